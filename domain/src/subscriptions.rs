//! The webhook subscriptions a HubSpot app needs for the portals'
//! configurations: a `*.creation` for every object type that is Active, a
//! `*.propertyChange` of every watched property (triggers and adjustment
//! rules), a `*.deletion` where a deletion reverses, each once with the
//! portals that need it.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use crate::{adjustments::ObjectAdjustments, object_type::ObjectType};

/// One subscription: `contact.creation`, or `deal.propertyChange` of a property.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Needed {
    /// e.g. `deal.propertyChange`.
    pub subscription_type: String,
    /// The property of a `propertyChange` subscription.
    pub property: Option<String>,
    /// Portals whose triggers need it.
    pub portals: BTreeSet<i64>,
}

/// The singular prefix HubSpot uses in subscription types.
fn prefix(t: ObjectType) -> &'static str {
    match t {
        ObjectType::Contacts => "contact",
        ObjectType::Companies => "company",
        ObjectType::Deals => "deal",
    }
}

/// From `(portal, object type, on_create, watched properties)` trigger rows
/// to the subscriptions they need, sorted.
pub fn needed(rows: &[(i64, ObjectType, bool, Vec<String>)]) -> Vec<Needed> {
    let mut out: BTreeMap<(String, Option<String>), BTreeSet<i64>> = BTreeMap::new();
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
    out.into_iter()
        .map(|((subscription_type, property), portals)| Needed {
            subscription_type,
            property,
            portals,
        })
        .collect()
}

/// The app configuration's webhook section (HubSpot developer projects'
/// `webhooks.json` shape).
pub fn app_config(needed: &[Needed], target_url: &str) -> Value {
    let subs: Vec<Value> = needed
        .iter()
        .map(|n| match &n.property {
            Some(p) => {
                json!({"subscriptionType": n.subscription_type, "propertyName": p, "active": true})
            }
            None => json!({"subscriptionType": n.subscription_type, "active": true}),
        })
        .collect();
    json!({
        "settings": { "targetUrl": target_url, "maxConcurrentRequests": 10 },
        "subscriptions": { "crmObjects": subs }
    })
}

/// Merges what adjustment `rules` need into `needed` (kept sorted, each
/// once): `*.deletion` for `reverse_on_delete`, `*.propertyChange` of every
/// `reverse_when` and `modify_on_change` property.
pub fn with_adjustments(
    needed: Vec<Needed>,
    rules: &[(i64, ObjectType, ObjectAdjustments)],
) -> Vec<Needed> {
    let mut out: BTreeMap<(String, Option<String>), BTreeSet<i64>> = needed
        .into_iter()
        .map(|n| ((n.subscription_type, n.property), n.portals))
        .collect();
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
    out.into_iter()
        .map(|((subscription_type, property), portals)| Needed {
            subscription_type,
            property,
            portals,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triggers_become_subscriptions_once_each() {
        let rows = vec![
            (
                1,
                ObjectType::Contacts,
                true,
                vec!["lifecyclestage".to_owned()],
            ),
            (
                2,
                ObjectType::Contacts,
                true,
                vec!["lifecyclestage".to_owned(), "hs_lead_status".to_owned()],
            ),
            (2, ObjectType::Deals, false, vec!["dealstage".to_owned()]),
        ];
        let n = needed(&rows);
        let names: Vec<(String, Option<String>, usize)> = n
            .iter()
            .map(|x| {
                (
                    x.subscription_type.clone(),
                    x.property.clone(),
                    x.portals.len(),
                )
            })
            .collect();
        assert_eq!(
            names,
            vec![
                ("contact.creation".to_owned(), None, 2),
                (
                    "contact.propertyChange".to_owned(),
                    Some("hs_lead_status".to_owned()),
                    1
                ),
                (
                    "contact.propertyChange".to_owned(),
                    Some("lifecyclestage".to_owned()),
                    2
                ),
                (
                    "deal.propertyChange".to_owned(),
                    Some("dealstage".to_owned()),
                    1
                ),
            ]
        );
        let cfg = app_config(&n, "https://c.example.com/webhooks/hubspot");
        assert_eq!(
            cfg["subscriptions"]["crmObjects"][3]["propertyName"],
            "dealstage"
        );
        assert_eq!(
            cfg["settings"]["targetUrl"],
            "https://c.example.com/webhooks/hubspot"
        );
    }

    #[test]
    fn rules_add_deletions_and_watched_properties_once() {
        let triggers = needed(&[(1, ObjectType::Deals, false, vec!["dealstage".to_owned()])]);
        let rules: ObjectAdjustments = serde_json::from_value(serde_json::json!({
            "reverse_when": [{ "property": "dealstage", "values": ["closedlost"] }],
            "reverse_on_delete": true,
            "modify_on_change": ["amount"]
        }))
        .expect("rules");
        let n = with_adjustments(triggers, &[(1, ObjectType::Deals, rules)]);
        let names: Vec<(&str, Option<&str>)> = n
            .iter()
            .map(|x| (x.subscription_type.as_str(), x.property.as_deref()))
            .collect();
        assert_eq!(
            names,
            [
                ("deal.deletion", None),
                ("deal.propertyChange", Some("amount")),
                ("deal.propertyChange", Some("dealstage")),
            ]
        );
    }
}
