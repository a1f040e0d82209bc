//! The webhook subscriptions a HubSpot app needs for the portals'
//! configurations, each once with the portals that need it:
//!
//! - a `*.creation` for every object type whose trigger fires on creation,
//!   a `*.propertyChange` of every watched property (triggers and
//!   adjustment rules), a `*.deletion` where a deletion reverses
//!   ([`needed`], [`with_adjustments`]);
//! - what the pipeline itself reads ([`with_product_events`]):
//!   `contact.privacyDeletion` always (erasure of personal data),
//!   `contact.deletion` when erasure on deletion is configured, and the
//!   `*.merge` and `*.restore` of every object type in use.
//!
//! [`hsmeta::component`] renders them as a developer project's webhooks component,
//! [`plan`] compares them with what a HubSpot app has.

pub mod hsmeta;
pub mod plan;

use std::collections::{BTreeMap, BTreeSet};

use crate::{adjustments::ObjectAdjustments, object_type::ObjectType};

/// One subscription: `contact.creation`, or `deal.propertyChange` of a property.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Needed {
    /// e.g. `deal.propertyChange`.
    pub subscription_type: String,
    /// The property of a `propertyChange` subscription.
    pub property: Option<String>,
    /// Portals whose configuration needs it (every portal for the
    /// subscriptions the pipeline itself reads).
    pub portals: BTreeSet<i64>,
}

impl Needed {
    /// Whether its events come routinely (creations, property changes), so
    /// that none in days hints at a missing subscription; deletions,
    /// merges, restores and privacy deletions may rightly never come.
    pub fn routine(&self) -> bool {
        matches!(self.kind(), "creation" | "propertyChange")
    }

    /// The part after the dot: `creation`, `propertyChange`, ...
    pub fn kind(&self) -> &str {
        self.subscription_type
            .split_once('.')
            .map_or("", |(_, kind)| kind)
    }
}

/// The singular prefix HubSpot uses in subscription types.
pub fn prefix(t: ObjectType) -> &'static str {
    match t {
        ObjectType::Contacts => "contact",
        ObjectType::Companies => "company",
        ObjectType::Deals => "deal",
    }
}

type Collected = BTreeMap<(String, Option<String>), BTreeSet<i64>>;

fn collect(needed: Vec<Needed>) -> Collected {
    needed
        .into_iter()
        .map(|n| ((n.subscription_type, n.property), n.portals))
        .collect()
}

fn sorted(out: Collected) -> Vec<Needed> {
    out.into_iter()
        .map(|((subscription_type, property), portals)| Needed {
            subscription_type,
            property,
            portals,
        })
        .collect()
}

/// From `(portal, object type, on_create, watched properties)` trigger rows
/// to the subscriptions they need, sorted.
pub fn needed(rows: &[(i64, ObjectType, bool, Vec<String>)]) -> Vec<Needed> {
    let mut out = Collected::new();
    for (portal, ty, on_create, properties) in rows {
        if *on_create {
            out.entry((format!("{}.creation", prefix(*ty)), None))
                .or_default()
                .insert(*portal);
        }
        for p in properties {
            out.entry((format!("{}.propertyChange", prefix(*ty)), Some(p.clone())))
                .or_default()
                .insert(*portal);
        }
    }
    sorted(out)
}

/// Merges what adjustment `rules` need into `needed` (kept sorted, each
/// once): `*.deletion` for `reverse_on_delete`, `*.propertyChange` of every
/// `reverse_when` and `modify_on_change` property.
pub fn with_adjustments(
    needed: Vec<Needed>,
    rules: &[(i64, ObjectType, ObjectAdjustments)],
) -> Vec<Needed> {
    let mut out = collect(needed);
    for (portal, ty, a) in rules {
        let mut add = |kind: &str, property: Option<&String>| {
            out.entry((format!("{}.{kind}", prefix(*ty)), property.cloned()))
                .or_default()
                .insert(*portal);
        };
        if a.reverse_on_delete {
            add("deletion", None);
        }
        for p in a.reverse_when.iter().map(|r| &r.property) {
            add("propertyChange", Some(p));
        }
        for p in &a.modify_on_change {
            add("propertyChange", Some(p));
        }
    }
    sorted(out)
}

/// Adds what the pipeline reads whatever the triggers say (kept sorted,
/// each once): `contact.privacyDeletion` for every portal (always listed,
/// even before the first portal), `contact.deletion` too when
/// `erase_on_deletion`, and `*.merge` / `*.restore` of every object type
/// some portal's triggers or rules use, for those portals.
pub fn with_product_events(needed: Vec<Needed>, erase_on_deletion: bool) -> Vec<Needed> {
    let mut by_type: BTreeMap<ObjectType, BTreeSet<i64>> = BTreeMap::new();
    let mut every: BTreeSet<i64> = BTreeSet::new();
    for n in &needed {
        let object = n.subscription_type.split('.').next().unwrap_or_default();
        if let Some(ty) = ObjectType::from_subscription_prefix(object) {
            by_type
                .entry(ty)
                .or_default()
                .extend(n.portals.iter().copied());
        }
        every.extend(n.portals.iter().copied());
    }
    let mut out = collect(needed);
    out.entry(("contact.privacyDeletion".into(), None))
        .or_default()
        .extend(every.iter().copied());
    if erase_on_deletion {
        out.entry(("contact.deletion".into(), None))
            .or_default()
            .extend(every.iter().copied());
    }
    for (ty, portals) in by_type {
        for kind in ["merge", "restore"] {
            out.entry((format!("{}.{kind}", prefix(ty)), None))
                .or_default()
                .extend(portals.iter().copied());
        }
    }
    sorted(out)
}

#[cfg(test)]
mod tests;
