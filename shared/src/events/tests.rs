use super::*;

const HUBSPOT_EXAMPLE: &str = r#"[{"eventId":1,"subscriptionId":12345,"portalId":62515,"occurredAt":1564113600000,"subscriptionType":"contact.creation","attemptNumber":0,"objectId":123,"changeSource":"CRM","changeFlag":"NEW","appId":54321}]"#;

#[test]
fn hubspots_example_body_is_accepted_byte_for_byte() {
    let batches = parse_delivery(HUBSPOT_EXAMPLE.as_bytes(), 100).expect("valid");
    assert_eq!(batches.len(), 1);
    assert_eq!(batches[0].portal_id, PortalId(62515));
    assert_eq!(batches[0].events, 1);
    assert_eq!(batches[0].body, HUBSPOT_EXAMPLE.as_bytes());
    let events = decode_message(&batches[0].body).expect("decodes");
    assert_eq!(events[0].object_and_action(), Some(("contact", "creation")));
    assert_eq!(events[0].change_flag.as_deref(), Some("NEW"));
}

#[test]
fn unknown_fields_and_types_are_preserved() {
    let body = r#"[ {"portalId":1,"objectId":2,"occurredAt":3,"subscriptionType":"object.newThing","objectTypeId":"0-3","nested":{"a":[1,2.50,"x"]},"propertyValue":"caf\u00e9"} ]"#;
    let batches = parse_delivery(body.as_bytes(), 100).expect("valid");
    let text = String::from_utf8(batches[0].body.clone()).expect("utf8");
    assert_eq!(
        text,
        r#"[{"portalId":1,"objectId":2,"occurredAt":3,"subscriptionType":"object.newThing","objectTypeId":"0-3","nested":{"a":[1,2.50,"x"]},"propertyValue":"caf\u00e9"}]"#
    );
    let ev = &decode_message(text.as_bytes()).expect("decodes")[0];
    assert_eq!(
        ev.extra.get("objectTypeId").and_then(|v| v.as_str()),
        Some("0-3")
    );
    assert_eq!(ev.property_value.as_deref(), Some("café"));
}

#[test]
fn event_type_is_accepted_as_an_alias() {
    let body = r#"[{"portalId":1,"objectId":2,"occurredAt":3,"eventType":"deal.creation"}]"#;
    let batches = parse_delivery(body.as_bytes(), 100).expect("valid");
    let ev = &decode_message(&batches[0].body).expect("decodes")[0];
    assert_eq!(ev.subscription_type, "deal.creation");
}

#[test]
fn mixed_portals_are_split_in_order() {
    let body = r#"[{"portalId":1,"objectId":1,"occurredAt":1,"subscriptionType":"a.b"},{"portalId":2,"objectId":2,"occurredAt":1,"subscriptionType":"a.b"},{"portalId":1,"objectId":3,"occurredAt":1,"subscriptionType":"a.b"}]"#;
    let batches = parse_delivery(body.as_bytes(), 100).expect("valid");
    assert_eq!(batches.len(), 2);
    assert_eq!((batches[0].portal_id, batches[0].events), (PortalId(1), 2));
    assert_eq!((batches[1].portal_id, batches[1].events), (PortalId(2), 1));
    let ids: Vec<u64> = decode_message(&batches[0].body)
        .expect("ok")
        .iter()
        .map(|e| e.object_id)
        .collect();
    assert_eq!(ids, vec![1, 3]);
}

#[test]
fn bad_bodies_are_named() {
    let ok = r#"{"portalId":1,"objectId":2,"occurredAt":3,"subscriptionType":"contact.creation"}"#;
    let cases: Vec<(String, &str)> = vec![
        ("not json".into(), "not valid JSON"),
        ("".into(), "not valid JSON"),
        (ok.into(), "must be a JSON array"),
        ("[]".into(), "empty array"),
        ("[1]".into(), "event 0: must be a JSON object"),
        (r#"[{"objectId":2,"occurredAt":3,"subscriptionType":"a.b"}]"#.into(), "event 0: missing field `portalId`"),
        (r#"[{"portalId":1,"occurredAt":3,"subscriptionType":"a.b"}]"#.into(), "missing field `objectId`"),
        (r#"[{"portalId":1,"objectId":2,"subscriptionType":"a.b"}]"#.into(), "missing field `occurredAt`"),
        (r#"[{"portalId":1,"objectId":2,"occurredAt":3}]"#.into(), "missing field `subscriptionType`"),
        (r#"[{"portalId":"1","objectId":2,"occurredAt":3,"subscriptionType":"a.b"}]"#.into(), "invalid type"),
        (r#"[{"portalId":-1,"objectId":2,"occurredAt":3,"subscriptionType":"a.b"}]"#.into(), "invalid value"),
        (r#"[{"portalId":1,"objectId":2,"occurredAt":3,"subscriptionType":7}]"#.into(), "invalid type"),
        (r#"[{"portalId":1,"objectId":2,"occurredAt":3,"subscriptionType":"a.b","propertyValue":5}]"#.into(), "invalid type"),
        (format!("[{ok},{ok},{{}}]"), "event 2: missing field"),
    ];
    for (body, expected) in cases {
        let err = parse_delivery(body.as_bytes(), 100)
            .expect_err(&body)
            .to_string();
        assert!(err.contains(expected), "{body}: {err}");
        if err.starts_with("event") {
            assert!(!err.contains("at line"), "{err}");
        }
    }
    let many = format!("[{}]", vec![ok; 101].join(","));
    assert_eq!(
        parse_delivery(many.as_bytes(), 100),
        Err(PayloadError::TooMany {
            count: 101,
            limit: 100
        })
    );
    assert!(parse_delivery(&[0xff, 0xfe], 100).is_err());
}

#[test]
fn a_single_object_message_decodes_too() {
    let one = r#"{"portalId":1,"objectId":2,"occurredAt":3,"subscriptionType":"contact.creation"}"#;
    assert_eq!(decode_message(one.as_bytes()).expect("ok").len(), 1);
}
