//! The subscriptions the adjustment rules need on top of the triggers':
//! `*.deletion` for `reverse_on_delete`, `*.propertyChange` of every
//! `reverse_when` and `modify_on_change` property.

use std::collections::{BTreeMap, BTreeSet};

use domain::{adjustments::ObjectAdjustments, object_type::ObjectType};
use sqlx::PgPool;

use super::subscriptions::Needed;

fn prefix(t: ObjectType) -> &'static str {
    match t {
        ObjectType::Contacts => "contact",
        ObjectType::Companies => "company",
        ObjectType::Deals => "deal",
    }
}

/// Pure: merges what `rules` need into `needed` (kept sorted, each once).
pub fn add(needed: Vec<Needed>, rules: &[(i64, ObjectType, ObjectAdjustments)]) -> Vec<Needed> {
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

/// The subscriptions every active portal needs: its triggers' and its
/// adjustment rules'.
pub async fn load(pool: &PgPool) -> anyhow::Result<Vec<Needed>> {
    let triggers = super::subscriptions::load_triggers(pool).await?;
    Ok(add(triggers, &load_rules(pool).await?))
}

/// Every active portal's adjustment rules.
pub async fn load_rules(
    pool: &PgPool,
) -> anyhow::Result<Vec<(i64, ObjectType, ObjectAdjustments)>> {
    Ok(shared::db::subscriptions::active_adjustment_rules(pool).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_add_deletions_and_watched_properties_once() {
        let triggers = super::super::subscriptions::needed(&[(
            1,
            ObjectType::Deals,
            false,
            vec!["dealstage".to_owned()],
        )]);
        let rules: ObjectAdjustments = serde_json::from_value(serde_json::json!({
            "reverse_when": [{ "property": "dealstage", "values": ["closedlost"] }],
            "reverse_on_delete": true,
            "modify_on_change": ["amount"]
        }))
        .expect("rules");
        let n = add(triggers, &[(1, ObjectType::Deals, rules)]);
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
