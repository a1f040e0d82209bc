use super::*;
use crate::object_type::ObjectType;

fn doc(adjustments: serde_json::Value) -> String {
    serde_json::json!({
        "portal_id": 62515,
        "hubspot": { "private_app_token": "pat-na1-xyz" },
        "impact": { "account_sid": "IRabc", "auth_token": "tok", "program_id": "1000" },
        "triggers": { "deals": { "on_change": [{ "property": "dealstage", "values": ["closedwon"] }] } },
        "mappings": { "deals": [
            { "from": "deal_[deal stage]", "to": "EventTypeCode" },
            { "from": "deal_[stage]_id", "to": "OrderId" },
            { "from": "hs_lastmodifieddate", "to": "EventDate" },
            { "from": "hs_object_id", "to": "CustomerId" },
            { "from": "amount", "to": "OrderSubTotal" }
        ] },
        "adjustments": adjustments
    })
    .to_string()
}

fn errors(text: &str) -> Vec<String> {
    match PortalDocument::parse(text) {
        Ok(d) => d.validate().expect_err("invalid").0,
        Err(e) => e.0,
    }
}

#[test]
fn adjustments_are_applied_and_exported_unchanged() {
    let rules = serde_json::json!({ "deals": {
        "reverse_when": [{ "property": "dealstage", "values": ["closedlost"] }],
        "reverse_on_delete": true,
        "disposition_code": "REJECTED",
        "modify_on_change": ["amount"],
        "modify_reason": "ORDER_UPDATE",
        "amount_from": "OrderSubTotal",
        "action_tracker_ids": { "Closed Won": 5001 }
    }});
    let v = PortalDocument::parse(&doc(rules.clone()))
        .expect("parses")
        .validate()
        .expect("valid");
    let deals = &v.config.adjustments[&ObjectType::Deals];
    assert!(deals.reverse_on_delete);
    assert_eq!(deals.disposition(), "REJECTED");
    assert!(v.warnings.is_empty(), "{:?}", v.warnings);
    let exported = PortalDocument::export(&v.config, HubSpotAuthKind::PrivateApp);
    let json = serde_json::to_value(&exported).expect("serialises");
    assert_eq!(json["adjustments"], rules);
    // And the export applies again to the same configuration.
    let again = serde_json::from_value::<PortalDocument>(json)
        .expect("parses")
        .validate()
        .expect("valid");
    assert_eq!(again.config.adjustments, v.config.adjustments);
}

#[test]
fn adjustment_problems_are_named_by_path() {
    let e = errors(&doc(serde_json::json!({ "deals": {
        "reverse_when": ["dealstage", { "property": "bad name", "values": [] }],
        "modify_on_change": ["amount", "amount"],
        "disposition_code": "not a code",
        "amount_from": "Text1",
        "action_tracker_ids": { "Closed Won": 0 }
    }})));
    let has = |s: &str| e.iter().any(|x| x.starts_with(s));
    assert!(
        has("adjustments.deals.reverse_when[0]: list the values"),
        "{e:?}"
    );
    assert!(
        has("adjustments.deals.reverse_when[1]: \"bad name\""),
        "{e:?}"
    );
    assert!(has("adjustments.deals.reverse_when[1].values"), "{e:?}");
    assert!(
        has("adjustments.deals.modify_on_change[1]: \"amount\" is listed twice"),
        "{e:?}"
    );
    assert!(has("adjustments.deals.disposition_code"), "{e:?}");
    assert!(has("adjustments.deals.amount_from: \"Text1\""), "{e:?}");
    assert!(
        has("adjustments.deals.action_tracker_ids.\"Closed Won\""),
        "{e:?}"
    );
    let unknown = errors(&doc(
        serde_json::json!({ "deals": { "reverse_on_lost": true } }),
    ));
    assert!(
        unknown[0].contains("unknown field `reverse_on_lost`"),
        "{unknown:?}"
    );
}

#[test]
fn modifications_need_a_mapped_amount_and_codes_need_tracker_ids() {
    let mut text: serde_json::Value = serde_json::from_str(&doc(
        serde_json::json!({ "deals": { "modify_on_change": ["amount"] } }),
    ))
    .expect("json");
    text["mappings"]["deals"]
        .as_array_mut()
        .expect("rows")
        .retain(|r| r["to"] != "OrderSubTotal");
    let e = errors(&text.to_string());
    assert!(
        e.iter().any(|x| x
            .starts_with("adjustments.deals.modify_on_change: modifications send the new Amount")),
        "{e:?}"
    );
    let v = PortalDocument::parse(&doc(
        serde_json::json!({ "deals": { "reverse_on_delete": true } }),
    ))
    .expect("parses")
    .validate()
    .expect("valid");
    assert!(
        v.warnings
            .iter()
            .any(|w| w.starts_with("adjustments.deals.action_tracker_ids")),
        "{:?}",
        v.warnings
    );
}

#[test]
fn a_disposition_code_impact_com_does_not_provide_is_warned_about() {
    let rules = |code: &str| {
        serde_json::json!({ "deals": {
            "reverse_when": [{ "property": "dealstage", "values": ["closedlost"] }],
            "disposition_code": code,
            "action_tracker_ids": { "Closed Won": 5001 }
        }})
    };
    let v = PortalDocument::parse(&doc(rules("ORDER_CANCELLED")))
        .expect("parses")
        .validate()
        .expect("a custom code may be configured in the account");
    assert!(
        v.warnings
            .iter()
            .any(|w| w.starts_with("adjustments.deals.disposition_code")
                && w.contains("ITEM_RETURNED")),
        "{:?}",
        v.warnings
    );
    for code in crate::adjustments::IMPACT_DISPOSITION_CODES {
        let v = PortalDocument::parse(&doc(rules(code)))
            .expect("parses")
            .validate()
            .expect("valid");
        assert!(v.warnings.is_empty(), "{code}: {:?}", v.warnings);
    }
}
