use proptest::prelude::*;

use super::*;
use crate::test_support::event;

fn set(doc: serde_json::Value) -> TriggerSet {
    serde_json::from_value(doc).expect("valid trigger set")
}

#[test]
fn creation_fires_only_when_active() {
    let t = set(serde_json::json!({
        "contacts": {"on_create": true},
        "deals": {"on_create": false, "on_change": ["dealstage"]}
    }));
    assert_eq!(
        evaluate(&t, &event("contact.creation", None)),
        Decision::Fire(ObjectType::Contacts, Firing::Creation)
    );
    assert_eq!(
        evaluate(&t, &event("deal.creation", None)),
        Decision::Ignore(IgnoreReason::NotEnabled)
    );
    assert_eq!(
        evaluate(&t, &event("company.creation", None)),
        Decision::Ignore(IgnoreReason::NotEnabled)
    );
}

#[test]
fn several_properties_act_as_or() {
    let t = set(serde_json::json!({"deals": {"on_change": ["dealtype", "dealname"]}}));
    for p in ["dealtype", "dealname"] {
        assert!(matches!(
            evaluate(&t, &event("deal.propertyChange", Some((p, "x")))),
            Decision::Fire(ObjectType::Deals, Firing::PropertyChange { .. })
        ));
    }
    assert_eq!(
        evaluate(&t, &event("deal.propertyChange", Some(("amount", "1")))),
        Decision::Ignore(IgnoreReason::PropertyNotWatched)
    );
}

#[test]
fn the_event_carries_the_value() {
    let t = set(serde_json::json!({"deals": {"on_change": ["dealstage"]}}));
    assert_eq!(
        evaluate(
            &t,
            &event("deal.propertyChange", Some(("dealstage", "closedwon")))
        ),
        Decision::Fire(
            ObjectType::Deals,
            Firing::PropertyChange {
                property: "dealstage".into(),
                value: Some("closedwon".into())
            }
        )
    );
}

#[test]
fn value_conditions_filter() {
    let t = set(serde_json::json!({"deals": {"on_change": [
        {"property": "dealstage", "values": ["closedwon"]}
    ]}}));
    assert!(matches!(
        evaluate(
            &t,
            &event("deal.propertyChange", Some(("dealstage", "closedwon")))
        ),
        Decision::Fire(..)
    ));
    assert_eq!(
        evaluate(
            &t,
            &event("deal.propertyChange", Some(("dealstage", "closedlost")))
        ),
        Decision::Ignore(IgnoreReason::ValueNotMatched)
    );
}

#[test]
fn other_actions_and_objects_are_ignored() {
    let t = set(serde_json::json!({"contacts": {"on_create": true, "on_change": ["email"]}}));
    for kind in [
        "contact.deletion",
        "contact.associationChange",
        "contact.privacyDeletion",
        "contact.somethingNew",
    ] {
        assert_eq!(
            evaluate(&t, &event(kind, None)),
            Decision::Ignore(IgnoreReason::UnsupportedAction),
            "{kind}"
        );
    }
    assert_eq!(
        evaluate(&t, &event("ticket.creation", None)),
        Decision::Ignore(IgnoreReason::UnsupportedObject)
    );
}

#[test]
fn merges_and_restores_fire_no_trigger_even_on_creation() {
    // A restored record is not created again; a merge is not a creation of
    // the survivor, whatever its id.
    let t = set(serde_json::json!({"contacts": {"on_create": true}, "deals": {"on_create": true}}));
    for (kind, reason) in [
        ("contact.merge", IgnoreReason::Merge),
        ("deal.merge", IgnoreReason::Merge),
        ("contact.restore", IgnoreReason::Restore),
        ("deal.restore", IgnoreReason::Restore),
        ("company.restore", IgnoreReason::Restore),
    ] {
        assert_eq!(
            evaluate(&t, &event(kind, None)),
            Decision::Ignore(reason),
            "{kind}"
        );
    }
    assert_eq!(IgnoreReason::Restore.as_str(), "restore");
}

#[test]
fn generic_object_events_use_the_type_id() {
    let t = set(serde_json::json!({"contacts": {"on_create": true}}));
    let mut e = event("object.creation", None);
    e.extra.insert("objectTypeId".into(), "0-1".into());
    assert_eq!(
        evaluate(&t, &e),
        Decision::Fire(ObjectType::Contacts, Firing::Creation)
    );
}

#[test]
fn document_form_round_trips() {
    let doc = serde_json::json!({"deals": {"on_create": false, "on_change": [
        "dealname", {"property": "dealstage", "values": ["closedwon"]}
    ]}});
    let t = set(doc.clone());
    assert_eq!(serde_json::to_value(&t).expect("serialises"), doc);
}

proptest! {
    /// A property change fires exactly when the property is watched (no value conditions).
    #[test]
    fn fires_iff_watched(
        watched in proptest::collection::vec("[a-z_]{1,12}", 0..5),
        changed in "[a-z_]{1,12}",
        value in ".{0,20}",
        kind in prop::sample::select(vec!["contact", "company", "deal"]),
    ) {
        let triggers: ObjectTriggers = ObjectTriggers {
            on_create: false,
            on_change: watched.iter().map(|p| PropertyTrigger { property: p.clone(), only_values: None }).collect(),
        };
        let ty = ObjectType::from_subscription_prefix(kind).expect("known");
        let set: TriggerSet = [(ty, triggers)].into_iter().collect();
        let d = evaluate(&set, &event(&format!("{kind}.propertyChange"), Some((&changed, &value))));
        prop_assert_eq!(matches!(d, Decision::Fire(..)), watched.contains(&changed));
        if let Decision::Fire(t, Firing::PropertyChange { property, value: v }) = d {
            prop_assert_eq!(t, ty);
            prop_assert_eq!(property, changed);
            prop_assert_eq!(v, Some(value));
        }
    }

    /// Events of object types without triggers never fire.
    #[test]
    fn unconfigured_types_never_fire(kind in "[a-z]{1,8}\\.[a-zA-Z]{1,15}") {
        let d = evaluate(&TriggerSet::new(), &event(&kind, Some(("p", "v"))));
        prop_assert!(matches!(d, Decision::Ignore(_)));
    }
}
