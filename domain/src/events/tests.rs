use super::*;

const HUBSPOT_EXAMPLE: &str = r#"[{"eventId":1,"subscriptionId":12345,"portalId":62515,"occurredAt":1564113600000,"subscriptionType":"contact.creation","attemptNumber":0,"objectId":123,"changeSource":"CRM","changeFlag":"NEW","appId":54321}]"#;

#[test]
fn hubspots_example_body_is_accepted_byte_for_byte() {
    let batches = parse_delivery(HUBSPOT_EXAMPLE.as_bytes(), 100)
        .expect("valid")
        .batches;
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
    let batches = parse_delivery(body.as_bytes(), 100).expect("valid").batches;
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
    let batches = parse_delivery(body.as_bytes(), 100).expect("valid").batches;
    let ev = &decode_message(&batches[0].body).expect("decodes")[0];
    assert_eq!(ev.subscription_type, "deal.creation");
}

#[test]
fn mixed_portals_are_split_in_order() {
    let body = r#"[{"portalId":1,"objectId":1,"occurredAt":1,"subscriptionType":"a.b"},{"portalId":2,"objectId":2,"occurredAt":1,"subscriptionType":"a.b"},{"portalId":1,"objectId":3,"occurredAt":1,"subscriptionType":"a.b"}]"#;
    let batches = parse_delivery(body.as_bytes(), 100).expect("valid").batches;
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
fn a_single_object_message_decodes_too() {
    let one = r#"{"portalId":1,"objectId":2,"occurredAt":3,"subscriptionType":"contact.creation"}"#;
    assert_eq!(decode_message(one.as_bytes()).expect("ok").len(), 1);
}

#[test]
fn odd_but_accepted_events_decode() {
    let body = r#"[{"portalId":1,"objectId":2,"occurredAt":3,"subscriptionType":"deal.creation","eventType":"x.y","sourceId":17,"changeSource":9,"changeFlag":{"a":1}},
        {"portalId":1,"objectId":3,"occurredAt":3,"subscriptionType":null,"eventType":"contact.creation","changeFlag":null}]"#;
    let batches = parse_delivery(body.as_bytes(), 100)
        .expect("accepted")
        .batches;
    let events = decode_message(&batches[0].body).expect("whatever ingest accepts decodes");
    assert_eq!(events[0].subscription_type, "deal.creation");
    assert_eq!(events[0].extra["eventType"], "x.y");
    assert_eq!(events[0].source_id.as_deref(), Some("17"));
    assert_eq!(events[0].change_flag.as_deref(), Some(r#"{"a":1}"#));
    assert_eq!(events[1].subscription_type, "contact.creation");
    assert_eq!(events[1].change_flag, None);
}

mod props {
    use super::*;
    use proptest::prelude::*;
    use serde_json::{Value, json};

    fn any_json() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            any::<u64>().prop_map(|n| json!(n)),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(|f| json!(f)),
            "\\PC{0,12}".prop_map(Value::String),
            Just(json!({"nested": [1, "two"]})),
        ]
    }

    proptest! {
        /// Whatever ingest queues, the worker can read back, event for event.
        #[test]
        fn accepted_implies_decodable(
            fields in proptest::collection::vec(
                (prop::sample::select(vec!["eventId", "subscriptionId", "appId", "attemptNumber", "propertyName",
                    "propertyValue", "changeSource", "changeFlag", "sourceId", "eventType", "subscriptionType",
                    "objectTypeId", "somethingNew"]), any_json()),
                0..6),
            n in 1usize..4,
        ) {
            let mut events = Vec::new();
            for i in 0..n {
                let mut ev = serde_json::Map::new();
                ev.insert("portalId".into(), json!(7));
                ev.insert("objectId".into(), json!(i));
                ev.insert("occurredAt".into(), json!(1_700_000_000_000u64));
                ev.insert("subscriptionType".into(), json!("contact.creation"));
                for (k, v) in &fields {
                    ev.insert((*k).to_owned(), v.clone());
                }
                events.push(Value::Object(ev));
            }
            let body = serde_json::to_vec(&events).expect("serialisable");
            // Every event is accounted for, and whatever is queued decodes.
            let d = parse_delivery(&body, 100).expect("an array of objects is never refused");
            prop_assert_eq!(d.queued() + d.invalid.len() + d.ignored.len(), n);
            for batch in &d.batches {
                let decoded = decode_message(&batch.body);
                prop_assert!(decoded.is_ok(), "{:?}", decoded.err());
                prop_assert_eq!(decoded.expect("checked").len(), batch.events);
            }
        }
    }
}
