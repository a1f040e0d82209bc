use serde_json::json;

use super::*;
use crate::test_support::event;

fn deals() -> AdjustmentSet {
    serde_json::from_value(json!({
        "deals": {
            "reverse_when": [{ "property": "dealstage", "values": ["closedlost"] }],
            "reverse_on_delete": true,
            "modify_on_change": ["amount"],
            "action_tracker_ids": { "Closed Won": 5001 }
        }
    }))
    .expect("valid rules")
}

fn params(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn a_listed_value_reverses_and_others_do_not() {
    let set = deals();
    let lost = event("deal.propertyChange", Some(("dealstage", "closedlost")));
    assert_eq!(
        evaluate(&set, &lost),
        Some((
            ObjectType::Deals,
            Adjustment::Reverse {
                cause: "dealstage=closedlost".into()
            }
        ))
    );
    let won = event("deal.propertyChange", Some(("dealstage", "closedwon")));
    assert_eq!(evaluate(&set, &won), None);
}

#[test]
fn deletion_reverses_only_when_enabled() {
    let set = deals();
    let deleted = event("deal.deletion", None);
    assert!(matches!(
        evaluate(&set, &deleted),
        Some((ObjectType::Deals, Adjustment::Reverse { cause })) if cause == "deleted"
    ));
    let mut off = set.clone();
    off.get_mut(&ObjectType::Deals)
        .expect("deals")
        .reverse_on_delete = false;
    assert_eq!(evaluate(&off, &deleted), None);
    // Other object types have no rules.
    assert_eq!(evaluate(&set, &event("contact.deletion", None)), None);
}

#[test]
fn a_watched_property_modifies() {
    let set = deals();
    let e = event("deal.propertyChange", Some(("amount", "1500")));
    assert_eq!(
        evaluate(&set, &e),
        Some((
            ObjectType::Deals,
            Adjustment::Modify {
                property: "amount".into(),
                value: Some("1500".into())
            }
        ))
    );
    assert_eq!(
        evaluate(
            &set,
            &event("deal.propertyChange", Some(("closedate", "1")))
        ),
        None
    );
    assert_eq!(evaluate(&set, &event("deal.creation", None)), None);
}

#[test]
fn actions_are_identified_by_tracker_and_order() {
    let rules = &deals()[&ObjectType::Deals];
    let by_code = params(&[("EventTypeCode", "Closed Won"), ("OrderId", "9_closedwon")]);
    assert_eq!(
        action_identity(ObjectType::Deals, &by_code, rules),
        Ok(params(&[
            ("ActionTrackerId", "5001"),
            ("OrderId", "9_closedwon")
        ]))
    );
    let by_id = params(&[("EventTypeId", "77"), ("OrderId", "A")]);
    assert_eq!(
        action_identity(ObjectType::Deals, &by_id, rules),
        Ok(params(&[("ActionTrackerId", "77"), ("OrderId", "A")]))
    );
    let unknown = params(&[("EventTypeCode", "Lead"), ("OrderId", "A")]);
    let e = action_identity(ObjectType::Deals, &unknown, rules).expect_err("unknown code");
    assert!(
        e.0.contains("adjustments.deals.action_tracker_ids.\"Lead\""),
        "{e}"
    );
}

#[test]
fn the_amount_follows_the_conversion_field() {
    let rules = ObjectAdjustments::default();
    let conv = params(&[("OrderId", "A"), ("OrderSubTotalPostDiscount", "10")]);
    assert_eq!(
        amount_field(&conv, &rules).as_deref(),
        Some("OrderSubTotalPostDiscount")
    );
    assert_eq!(amount_field(&params(&[("OrderId", "A")]), &rules), None);
    let explicit = ObjectAdjustments {
        amount_from: Some("OrderSubTotal".into()),
        ..Default::default()
    };
    assert_eq!(
        amount_field(&conv, &explicit).as_deref(),
        Some("OrderSubTotalPostDiscount")
    );
    assert!(same_amount("100", "100.00"));
    assert!(!same_amount("100", "100.5"));
}

#[test]
fn defaults_are_documented_codes() {
    let r = ObjectAdjustments::default();
    assert_eq!(r.disposition(), "OTHER");
    assert_eq!(r.reason(), "ORDER_UPDATE");
    assert!(r.is_inert());
}
