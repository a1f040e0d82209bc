//! What `worker subscriptions --apply` changes in a HubSpot app: the
//! difference between the subscriptions the portals need and those the app
//! has (read through HubSpot's Webhooks API), and the app's target URL.
//!
//! Needed and missing: created. Needed and paused: re-activated. Active and
//! no longer needed: paused (`active: false`), not deleted, so the change
//! is visible in HubSpot and undone by re-activating it (and a
//! subscription the connector did not create is never lost). Applying the
//! plan and planning again gives an empty plan.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use super::Needed;
use super::hsmeta::MAX_CONCURRENT_REQUESTS;

/// One subscription an app has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Existing {
    /// HubSpot's id of the subscription.
    pub id: String,
    /// e.g. `deal.propertyChange`.
    pub event_type: String,
    /// The property of a `propertyChange` subscription.
    pub property_name: Option<String>,
    /// Whether it delivers (paused: `false`).
    pub active: bool,
}

impl Existing {
    fn key(&self) -> Key {
        Key {
            event_type: self.event_type.clone(),
            property_name: self.property_name.clone(),
        }
    }
}

/// An app's webhook settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppSettings {
    /// Where HubSpot posts the events.
    pub target_url: String,
    /// Requests at once per account.
    pub max_concurrent_requests: u32,
}

/// What a subscription is: its event type and property.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Key {
    /// e.g. `deal.propertyChange`.
    pub event_type: String,
    /// The property of a `propertyChange` subscription.
    pub property_name: Option<String>,
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.property_name {
            Some(p) => write!(f, "{} of {p}", self.event_type),
            None => f.write_str(&self.event_type),
        }
    }
}

/// Why an active subscription is paused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PauseReason {
    /// No portal's configuration needs it any more.
    NotNeeded,
    /// Another active subscription has the same type and property.
    Duplicate,
}

/// One change to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Set the target URL (and, when the app has none, the concurrency).
    Settings {
        /// The app's settings now (`None`: none yet).
        from: Option<AppSettings>,
        /// What they become.
        to: AppSettings,
    },
    /// Create the subscription, active.
    Create(Key),
    /// Re-activate a paused subscription.
    Activate {
        /// Its id.
        id: String,
        /// What it is.
        key: Key,
    },
    /// Pause an active subscription.
    Pause {
        /// Its id.
        id: String,
        /// What it is.
        key: Key,
        /// Why.
        why: PauseReason,
    },
}

impl Step {
    /// One line for the operator; `done` chooses "created" over "would create".
    pub fn describe(&self, done: bool) -> String {
        let verb = |did: &str, would: &str| {
            if done {
                did.to_owned()
            } else {
                would.to_owned()
            }
        };
        match self {
            Self::Settings { from, to } => {
                let was = from
                    .as_ref()
                    .map_or("none".to_owned(), |s| s.target_url.clone());
                format!(
                    "{} target URL {} (was: {was}; {} requests at once)",
                    verb("set", "would set"),
                    to.target_url,
                    to.max_concurrent_requests
                )
            }
            Self::Create(key) => format!("{} {key}", verb("created", "would create")),
            Self::Activate { id, key } => {
                format!(
                    "{} {key} (id {id}, was paused)",
                    verb("re-activated", "would re-activate")
                )
            }
            Self::Pause { id, key, why } => {
                let why = match why {
                    PauseReason::NotNeeded => "no portal needs it any more",
                    PauseReason::Duplicate => "a duplicate of an active one",
                };
                format!(
                    "{} {key} (id {id}): {why}; paused, not deleted",
                    verb("paused", "would pause")
                )
            }
        }
    }
}

/// Everything to change, in order (settings, creations, re-activations,
/// pauses), and what is already right.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// The changes.
    pub steps: Vec<Step>,
    /// Needed subscriptions already active.
    pub unchanged: Vec<Key>,
}

impl Plan {
    /// Nothing to change.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }
}

/// Numeric ids in numeric order, others after them.
fn id_order(id: &str) -> (u64, String) {
    (id.parse().unwrap_or(u64::MAX), id.to_owned())
}

/// The plan that makes the app deliver exactly `needed` to `target_url`,
/// given its `existing` subscriptions and current `settings`.
pub fn plan(
    needed: &[Needed],
    existing: &[Existing],
    settings: Option<&AppSettings>,
    target_url: &str,
) -> Plan {
    let mut out = Plan::default();
    let to = AppSettings {
        target_url: target_url.to_owned(),
        max_concurrent_requests: settings
            .map_or(MAX_CONCURRENT_REQUESTS, |s| s.max_concurrent_requests),
    };
    if settings != Some(&to) {
        out.steps.push(Step::Settings {
            from: settings.cloned(),
            to,
        });
    }
    let mut by_key: BTreeMap<Key, Vec<&Existing>> = BTreeMap::new();
    for e in existing {
        by_key.entry(e.key()).or_default().push(e);
    }
    for list in by_key.values_mut() {
        list.sort_by_key(|e| id_order(&e.id));
    }
    let wanted: BTreeSet<Key> = needed
        .iter()
        .map(|n| Key {
            event_type: n.subscription_type.clone(),
            property_name: n.property.clone(),
        })
        .collect();
    let (mut activate, mut pause) = (Vec::new(), Vec::new());
    for key in &wanted {
        let list = by_key.get(key).map(Vec::as_slice).unwrap_or_default();
        let mut active = list.iter().filter(|e| e.active);
        match (active.next(), list.first()) {
            (Some(_), _) => out.unchanged.push(key.clone()),
            (None, Some(first)) => activate.push(Step::Activate {
                id: first.id.clone(),
                key: key.clone(),
            }),
            (None, None) => out.steps.push(Step::Create(key.clone())),
        }
        pause.extend(active.map(|e| Step::Pause {
            id: e.id.clone(),
            key: key.clone(),
            why: PauseReason::Duplicate,
        }));
    }
    for (key, list) in &by_key {
        if !wanted.contains(key) {
            pause.extend(list.iter().filter(|e| e.active).map(|e| Step::Pause {
                id: e.id.clone(),
                key: key.clone(),
                why: PauseReason::NotNeeded,
            }));
        }
    }
    out.steps.extend(activate);
    out.steps.extend(pause);
    out
}
