use serde_json::{Value, json};

use super::plan::{AppSettings, Existing, Key, PauseReason, Step, plan};
use super::*;

fn names(n: &[Needed]) -> Vec<(&str, Option<&str>)> {
    n.iter()
        .map(|x| (x.subscription_type.as_str(), x.property.as_deref()))
        .collect()
}

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
    let counted: Vec<(&str, Option<&str>, usize)> = n
        .iter()
        .map(|x| {
            (
                x.subscription_type.as_str(),
                x.property.as_deref(),
                x.portals.len(),
            )
        })
        .collect();
    assert_eq!(
        counted,
        vec![
            ("contact.creation", None, 2),
            ("contact.propertyChange", Some("hs_lead_status"), 1),
            ("contact.propertyChange", Some("lifecyclestage"), 2),
            ("deal.propertyChange", Some("dealstage"), 1),
        ]
    );
}

#[test]
fn rules_add_deletions_and_watched_properties_once() {
    let triggers = needed(&[(1, ObjectType::Deals, false, vec!["dealstage".to_owned()])]);
    let rules: ObjectAdjustments = serde_json::from_value(json!({
        "reverse_when": [{ "property": "dealstage", "values": ["closedlost"] }],
        "reverse_on_delete": true,
        "modify_on_change": ["amount"]
    }))
    .expect("rules");
    let n = with_adjustments(triggers, &[(1, ObjectType::Deals, rules)]);
    assert_eq!(
        names(&n),
        [
            ("deal.deletion", None),
            ("deal.propertyChange", Some("amount")),
            ("deal.propertyChange", Some("dealstage")),
        ]
    );
}

#[test]
fn the_pipeline_s_own_events_are_added_for_the_types_in_use() {
    let triggers = needed(&[
        (1, ObjectType::Contacts, true, vec![]),
        (2, ObjectType::Deals, false, vec!["dealstage".to_owned()]),
    ]);
    let n = with_product_events(triggers, false);
    assert_eq!(
        names(&n),
        [
            ("contact.creation", None),
            ("contact.merge", None),
            ("contact.privacyDeletion", None),
            ("contact.restore", None),
            ("deal.merge", None),
            ("deal.propertyChange", Some("dealstage")),
            ("deal.restore", None),
        ]
    );
    let privacy = n
        .iter()
        .find(|x| x.subscription_type == "contact.privacyDeletion")
        .expect("listed");
    assert_eq!(privacy.portals.iter().copied().collect::<Vec<_>>(), [1, 2]);
    let deal_merge = n
        .iter()
        .find(|x| x.subscription_type == "deal.merge")
        .expect("listed");
    assert_eq!(deal_merge.portals.iter().copied().collect::<Vec<_>>(), [2]);
    assert!(!privacy.routine() && !deal_merge.routine() && n[0].routine());

    // Erasure on deletion needs contact deletions; with no portal at all,
    // privacy deletions are still listed.
    let n = with_product_events(Vec::new(), true);
    assert_eq!(
        names(&n),
        [
            ("contact.deletion", None),
            ("contact.privacyDeletion", None)
        ]
    );
}

/// The developer project's webhooks component, as HubSpot's configuration
/// reference describes it: classic types under `legacyCrmObjects`,
/// `contact.privacyDeletion` under `hubEvents`, `crmObjects` only for
/// generic `object.*` entries with an `objectType`.
#[test]
fn hsmeta_component_sorts_types_into_hubspot_s_lists() {
    let triggers = needed(&[(
        1,
        ObjectType::Contacts,
        true,
        vec!["lifecyclestage".to_owned()],
    )]);
    let n = with_product_events(triggers, false);
    let c = hsmeta::component(&n, "https://c.example.com/webhooks/hubspot");
    assert_eq!(c["uid"], "webhooks");
    assert_eq!(c["type"], "webhooks");
    let cfg = &c["config"];
    assert_eq!(
        cfg["settings"],
        json!({"targetUrl": "https://c.example.com/webhooks/hubspot", "maxConcurrentRequests": 10})
    );
    let subs = &cfg["subscriptions"];
    let mut lists: Vec<&str> = subs
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    lists.sort_unstable();
    assert_eq!(lists, ["crmObjects", "hubEvents", "legacyCrmObjects"]);
    for generic in subs["crmObjects"].as_array().expect("a list") {
        let t = generic["subscriptionType"].as_str().unwrap_or_default();
        assert!(t.starts_with("object.") && generic["objectType"].is_string());
    }
    assert_eq!(
        subs["hubEvents"],
        json!([{"subscriptionType": "contact.privacyDeletion", "active": true}])
    );
    assert_eq!(
        subs["legacyCrmObjects"],
        json!([
            {"subscriptionType": "contact.creation", "active": true},
            {"subscriptionType": "contact.merge", "active": true},
            {"subscriptionType": "contact.propertyChange", "propertyName": "lifecyclestage", "active": true},
            {"subscriptionType": "contact.restore", "active": true},
        ])
    );
    let all: Vec<&Value> = ["crmObjects", "legacyCrmObjects", "hubEvents"]
        .iter()
        .flat_map(|k| subs[*k].as_array().into_iter().flatten())
        .collect();
    assert_eq!(all.len(), n.len(), "every needed subscription is listed");
}

fn existing(id: &str, t: &str, p: Option<&str>, active: bool) -> Existing {
    Existing {
        id: id.into(),
        event_type: t.into(),
        property_name: p.map(Into::into),
        active,
    }
}

fn key(t: &str, p: Option<&str>) -> Key {
    Key {
        event_type: t.into(),
        property_name: p.map(Into::into),
    }
}

const TARGET: &str = "https://c.example.com/webhooks/hubspot";

#[test]
fn plan_creates_reactivates_and_pauses() {
    let n = needed(&[(
        1,
        ObjectType::Contacts,
        true,
        vec!["lifecyclestage".to_owned(), "hs_lead_status".to_owned()],
    )]);
    let have = [
        existing("12", "contact.creation", None, true),
        existing(
            "13",
            "contact.propertyChange",
            Some("lifecyclestage"),
            false,
        ),
        existing("14", "deal.propertyChange", Some("dealstage"), true),
        existing("15", "deal.propertyChange", Some("amount"), false),
    ];
    let settings = AppSettings {
        target_url: "https://old.example.com/hook".into(),
        max_concurrent_requests: 7,
    };
    let p = plan(&n, &have, Some(&settings), TARGET);
    assert_eq!(
        p.steps,
        [
            Step::Settings {
                from: Some(settings.clone()),
                to: AppSettings {
                    target_url: TARGET.into(),
                    max_concurrent_requests: 7
                },
            },
            Step::Create(key("contact.propertyChange", Some("hs_lead_status"))),
            Step::Activate {
                id: "13".into(),
                key: key("contact.propertyChange", Some("lifecyclestage"))
            },
            Step::Pause {
                id: "14".into(),
                key: key("deal.propertyChange", Some("dealstage")),
                why: PauseReason::NotNeeded
            },
        ]
    );
    assert_eq!(p.unchanged, [key("contact.creation", None)]);
    assert_eq!(
        p.steps[3].describe(false),
        "would pause deal.propertyChange of dealstage (id 14): no portal needs it any more; paused, not deleted"
    );
}

#[test]
fn an_applied_plan_leaves_nothing_to_do() {
    let n = with_product_events(
        needed(&[(1, ObjectType::Deals, true, vec!["dealstage".to_owned()])]),
        false,
    );
    let first = plan(&n, &[], None, TARGET);
    assert_eq!(
        first.steps[0],
        Step::Settings {
            from: None,
            to: AppSettings {
                target_url: TARGET.into(),
                max_concurrent_requests: 10
            }
        }
    );
    assert_eq!(first.steps.len(), 1 + n.len());
    // What HubSpot has once the plan is applied.
    let have: Vec<Existing> = first
        .steps
        .iter()
        .enumerate()
        .filter_map(|(i, s)| match s {
            Step::Create(k) => Some(existing(
                &i.to_string(),
                &k.event_type,
                k.property_name.as_deref(),
                true,
            )),
            _ => None,
        })
        .collect();
    let settings = AppSettings {
        target_url: TARGET.into(),
        max_concurrent_requests: 10,
    };
    let again = plan(&n, &have, Some(&settings), TARGET);
    assert!(again.is_empty(), "{again:?}");
    assert_eq!(again.unchanged.len(), n.len());
}

#[test]
fn duplicates_are_paused_and_the_lowest_id_kept() {
    let n = needed(&[(1, ObjectType::Contacts, true, vec![])]);
    let have = [
        existing("30", "contact.creation", None, true),
        existing("9", "contact.creation", None, true),
    ];
    let settings = AppSettings {
        target_url: TARGET.into(),
        max_concurrent_requests: 10,
    };
    let p = plan(&n, &have, Some(&settings), TARGET);
    assert_eq!(
        p.steps,
        [Step::Pause {
            id: "30".into(),
            key: key("contact.creation", None),
            why: PauseReason::Duplicate
        }]
    );
    // Both paused: the lowest id is re-activated, nothing created.
    let have = [
        existing("30", "contact.creation", None, false),
        existing("9", "contact.creation", None, false),
    ];
    let p = plan(&n, &have, Some(&settings), TARGET);
    assert_eq!(
        p.steps,
        [Step::Activate {
            id: "9".into(),
            key: key("contact.creation", None)
        }]
    );
}
