//! The webhooks component of a HubSpot developer project
//! (`src/app/webhooks/webhooks-hsmeta.json`): `uid`, `type: "webhooks"` and
//! a `config` with the `settings` (target URL, concurrency) and the
//! `subscriptions`, sorted into HubSpot's three lists:
//!
//! - `crmObjects`: generic `object.*` subscriptions, each with an
//!   `objectType` (the connector subscribes to none: it reads the classic
//!   ones, which carry no `objectTypeId`);
//! - `legacyCrmObjects`: the classic `contact.creation`,
//!   `deal.propertyChange` (with `propertyName`), `*.deletion`, `*.merge`,
//!   `*.restore`;
//! - `hubEvents`: `contact.privacyDeletion`.

use serde_json::{Value, json};

use super::Needed;

/// The component's `uid`.
pub const UID: &str = "webhooks";

/// Requests HubSpot makes at once per account (its default).
pub const MAX_CONCURRENT_REQUESTS: u32 = 10;

/// Which list of the component a subscription type belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// Generic `object.*` types.
    CrmObjects,
    /// Classic per-object types (`contact.creation`, ...).
    LegacyCrmObjects,
    /// Account-level events (`contact.privacyDeletion`).
    HubEvents,
}

impl Section {
    /// Its key under `config.subscriptions`.
    pub fn key(self) -> &'static str {
        match self {
            Self::CrmObjects => "crmObjects",
            Self::LegacyCrmObjects => "legacyCrmObjects",
            Self::HubEvents => "hubEvents",
        }
    }

    /// The list `subscription_type` goes in.
    pub fn of(subscription_type: &str) -> Section {
        if subscription_type == "contact.privacyDeletion" {
            Self::HubEvents
        } else if subscription_type.starts_with("object.") {
            Self::CrmObjects
        } else {
            Self::LegacyCrmObjects
        }
    }
}

/// The whole component for `needed`, delivering to `target_url`.
pub fn component(needed: &[Needed], target_url: &str) -> Value {
    let mut lists: [(Section, Vec<Value>); 3] = [
        (Section::CrmObjects, Vec::new()),
        (Section::LegacyCrmObjects, Vec::new()),
        (Section::HubEvents, Vec::new()),
    ];
    for n in needed {
        let mut entry = json!({"subscriptionType": n.subscription_type, "active": true});
        if let Some(p) = &n.property {
            entry["propertyName"] = json!(p);
        }
        let section = Section::of(&n.subscription_type);
        if let Some((_, list)) = lists.iter_mut().find(|(s, _)| *s == section) {
            list.push(entry);
        }
    }
    let subscriptions: serde_json::Map<String, Value> = lists
        .into_iter()
        .map(|(s, list)| (s.key().to_owned(), Value::Array(list)))
        .collect();
    json!({
        "uid": UID,
        "type": "webhooks",
        "config": {
            "settings": {
                "targetUrl": target_url,
                "maxConcurrentRequests": MAX_CONCURRENT_REQUESTS,
            },
            "subscriptions": subscriptions,
        }
    })
}
