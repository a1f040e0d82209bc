//! `worker subscriptions`: the webhook subscriptions the HubSpot app needs
//! for every portal's triggers (and adjustment rules), ready to paste into the app's configuration,
//! and a warning for each one whose events never arrived.

use std::collections::{BTreeMap, BTreeSet};

use domain::object_type::ObjectType;
use serde_json::{Value, json};
use shared::db;
use sqlx::PgPool;

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

/// Pure: from `(portal, object type, on_create, watched properties)` rows
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

/// Reads every active portal's triggers: the subscriptions they need.
pub async fn load_triggers(pool: &PgPool) -> anyhow::Result<Vec<Needed>> {
    Ok(needed(&db::subscriptions::active_triggers(pool).await?))
}

/// The subscriptions of which no event was received in the last `days` days.
pub async fn never_seen(
    pool: &PgPool,
    needed: &[Needed],
    days: u32,
) -> anyhow::Result<Vec<Needed>> {
    let seen = db::subscriptions::seen_since(pool, days).await?;
    Ok(needed
        .iter()
        .filter(|n| {
            !seen.contains(&(
                n.subscription_type.clone(),
                n.property.clone().unwrap_or_default(),
            ))
        })
        .cloned()
        .collect())
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
}
