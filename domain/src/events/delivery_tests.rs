use super::event::nesting_depth;
use super::*;

const OK: &str =
    r#"{"portalId":1,"objectId":2,"occurredAt":3,"subscriptionType":"contact.creation"}"#;

/// HubSpot's association-change event: `fromObjectId`/`toObjectId`, no `objectId`.
const ASSOCIATION: &str = r#"{"eventId":7,"subscriptionId":8,"portalId":1,"appId":9,"occurredAt":3,"subscriptionType":"contact.associationChange","attemptNumber":0,"changeSource":"USER","associationType":"CONTACT_TO_COMPANY","fromObjectId":2,"toObjectId":5,"associationRemoved":false,"isPrimaryAssociation":false}"#;

#[test]
fn bodies_that_are_not_arrays_of_objects_are_refused() {
    let cases: Vec<(String, &str)> = vec![
        ("not json".into(), "not valid JSON"),
        ("".into(), "not valid JSON"),
        (OK.into(), "must be a JSON array"),
        ("[]".into(), "empty array"),
        ("[1]".into(), "event 0: must be a JSON object"),
        (
            format!("[{OK},{OK},\"x\"]"),
            "event 2: must be a JSON object",
        ),
        (format!("[{OK},[]]"), "event 1: must be a JSON object"),
    ];
    for (body, expected) in cases {
        let err = parse_delivery(body.as_bytes(), 100)
            .expect_err(&body)
            .to_string();
        assert!(err.contains(expected), "{body}: {err}");
    }
    let many = format!("[{}]", vec![OK; 101].join(","));
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
fn unreadable_events_of_kinds_the_pipeline_reads_are_kept_as_invalid() {
    let cases: Vec<(&str, Option<u64>, &str)> = vec![
        (
            r#"{"portalId":1,"objectId":"abc","occurredAt":3,"subscriptionType":"contact.creation"}"#,
            Some(1),
            "`objectId` must be a non-negative integer, not \"abc\"",
        ),
        (
            r#"{"portalId":1,"occurredAt":3,"subscriptionType":"deal.propertyChange"}"#,
            Some(1),
            "missing field `objectId`",
        ),
        (
            r#"{"portalId":1,"objectId":2,"subscriptionType":"contact.creation"}"#,
            Some(1),
            "missing field `occurredAt`",
        ),
        (
            r#"{"objectId":2,"occurredAt":3,"subscriptionType":"contact.creation"}"#,
            None,
            "missing field `portalId`",
        ),
        (
            r#"{"portalId":"1","objectId":2,"occurredAt":3,"subscriptionType":"contact.creation"}"#,
            None,
            "`portalId` must be a non-negative integer",
        ),
        (
            r#"{"portalId":1,"objectId":-5,"occurredAt":3,"subscriptionType":"object.creation"}"#,
            Some(1),
            "`objectId` must be a non-negative integer, not -5",
        ),
        (
            r#"{"portalId":1,"objectId":2,"occurredAt":1e30,"subscriptionType":"contact.deletion"}"#,
            Some(1),
            "`occurredAt` must be a non-negative integer",
        ),
        (
            r#"{"portalId":1,"objectId":2,"occurredAt":3}"#,
            Some(1),
            "missing field `subscriptionType`",
        ),
        (
            r#"{"portalId":1,"objectId":2,"occurredAt":3,"subscriptionType":7}"#,
            Some(1),
            "invalid type",
        ),
        (
            r#"{"portalId":1,"objectId":2,"occurredAt":3,"subscriptionType":"contact.propertyChange","propertyValue":{"$gt":""}}"#,
            Some(1),
            "invalid type",
        ),
        (
            r#"{"portalId":1,"objectId":2,"occurredAt":3,"subscriptionType":"contact.propertyChange","propertyName":"<img src=x onerror=alert(1)>"}"#,
            Some(1),
            "`propertyName`",
        ),
        (
            r#"{"portalId":1,"objectId":2,"occurredAt":3,"subscriptionType":"contact.propertyChange","propertyName":"../../etc/passwd"}"#,
            Some(1),
            "`propertyName`",
        ),
    ];
    for (event, portal, expected) in cases {
        let body = format!("[{OK},{event}]");
        let d = parse_delivery(body.as_bytes(), 100).expect(event);
        assert_eq!(d.queued(), 1, "{event}: the valid one is queued");
        assert_eq!(d.batches[0].body, format!("[{OK}]").as_bytes());
        assert!(d.ignored.is_empty(), "{event}");
        let [bad] = d.invalid.as_slice() else {
            panic!("{event}: one invalid event, got {:?}", d.invalid);
        };
        assert_eq!(bad.index, 1);
        assert_eq!(bad.portal_id, portal.map(PortalId), "{event}");
        assert!(bad.problem.contains(expected), "{event}: {}", bad.problem);
        assert!(!bad.problem.contains("at line"), "{}", bad.problem);
        assert_eq!(
            bad.body,
            format!("[{event}]").as_bytes(),
            "kept byte for byte"
        );
    }
    let deep = format!(
        r#"{{"portalId":1,"objectId":2,"occurredAt":3,"subscriptionType":"contact.creation","x":{}1{}}}"#,
        "[".repeat(40),
        "]".repeat(40)
    );
    let d = parse_delivery(format!("[{deep}]").as_bytes(), 100).expect("an array of objects");
    assert!(d.invalid[0].problem.contains("nested deeper than 32"));
}

#[test]
fn unreadable_events_of_kinds_the_pipeline_ignores_are_dropped() {
    let cases: Vec<(&str, IgnoredEvent)> = vec![
        (ASSOCIATION, IgnoredEvent::AssociationChange),
        (
            r#"{"portalId":1,"occurredAt":3,"subscriptionType":"object.associationChange","fromObjectId":1,"toObjectId":2}"#,
            IgnoredEvent::AssociationChange,
        ),
        (
            r#"{"portalId":1,"occurredAt":3,"subscriptionType":"ticket.somethingNew"}"#,
            IgnoredEvent::UnknownType,
        ),
        (
            r#"{"portalId":1,"objectId":"x","occurredAt":3,"eventType":"conversation.creation"}"#,
            IgnoredEvent::UnknownType,
        ),
        (
            r#"{"portalId":1,"objectId":2,"occurredAt":3,"subscriptionType":"contact.creation'; DROP TABLE portals;--"}"#,
            IgnoredEvent::UnknownType,
        ),
        (
            r#"{"portalId":1,"objectId":2,"occurredAt":3,"subscriptionType":"<script>alert(1)</script>"}"#,
            IgnoredEvent::UnknownType,
        ),
        (
            r#"{"portalId":1,"objectId":2,"occurredAt":3,"subscriptionType":"contact"}"#,
            IgnoredEvent::UnknownType,
        ),
    ];
    for (event, why) in cases {
        let body = format!("[{event},{OK}]");
        let d = parse_delivery(body.as_bytes(), 100).expect(event);
        assert_eq!(d.ignored, vec![why], "{event}");
        assert!(d.invalid.is_empty(), "{event}: {:?}", d.invalid);
        assert_eq!(d.queued(), 1);
    }
}

#[test]
fn readable_events_of_any_kind_are_queued() {
    // A well-formed event of a kind no trigger reads still reaches the
    // worker (which records it as ignored), as before.
    let body = r#"[{"portalId":1,"objectId":2,"occurredAt":3,"subscriptionType":"ticket.creation"},{"portalId":1,"objectId":2,"occurredAt":3,"subscriptionType":"contact.merge","primaryObjectId":2,"mergedObjectIds":[4]}]"#;
    let d = parse_delivery(body.as_bytes(), 100).expect("valid");
    assert_eq!(d.queued(), 2);
    assert!(d.invalid.is_empty() && d.ignored.is_empty());
}

#[test]
fn a_delivery_of_only_odd_events_is_still_read() {
    let bad =
        r#"{"portalId":1,"objectId":"abc","occurredAt":3,"subscriptionType":"contact.creation"}"#;
    let d = parse_delivery(format!("[{ASSOCIATION},{bad}]").as_bytes(), 100).expect("read");
    assert!(d.batches.is_empty());
    assert_eq!(d.ignored.len(), 1);
    assert_eq!(d.invalid.len(), 1);
}

#[test]
fn the_kinds_the_pipeline_reads() {
    for k in [
        "contact.creation",
        "deal.propertyChange",
        "company.deletion",
        "contact.privacyDeletion",
        "deal.merge",
        "contact.restore",
        "object.creation",
    ] {
        assert!(pipeline_reads(k), "{k}");
    }
    for k in [
        "contact.associationChange",
        "object.associationChange",
        "ticket.creation",
        "contact",
        "",
        "contact.somethingNew",
    ] {
        assert!(!pipeline_reads(k), "{k}");
    }
}

#[test]
fn the_portal_of_a_delivery_is_read_before_anything_is_trusted() {
    let p = |body: &str| {
        read_delivery(body.as_bytes(), 100)
            .ok()
            .and_then(|r| r.portal())
    };
    assert_eq!(p(&format!("[{OK},{OK}]")), Some(PortalId(1)));
    assert_eq!(
        p(r#"[{"portalId":1},{"objectId":2},{"portalId":1}]"#),
        Some(PortalId(1)),
        "events without portalId aside"
    );
    assert_eq!(p(r#"[{"portalId":1},{"portalId":2}]"#), None, "mixed");
    assert_eq!(p(r#"[{"portalId":"1"}]"#), None);
    assert_eq!(p(r#"[{"objectId":1}]"#), None);
    assert_eq!(p("[]"), None);
    assert_eq!(p(r#"{"portalId":1}"#), None);
    assert_eq!(p("not json"), None);
    assert_eq!(p(&format!("[{ASSOCIATION}]")), Some(PortalId(1)));
    // Whatever is queued or kept belongs to that portal: an unreadable
    // event naming another portal makes the delivery one of no portal.
    let other =
        r#"{"portalId":2,"objectId":"abc","occurredAt":3,"subscriptionType":"contact.creation"}"#;
    assert_eq!(p(&format!("[{OK},{other}]")), None);
    let duplicate = r#"{"portalId":2,"portalId":1,"objectId":2,"occurredAt":3,"subscriptionType":"contact.creation"}"#;
    let body = format!("[{OK},{duplicate}]");
    let read = read_delivery(body.as_bytes(), 100).expect("read");
    assert_eq!(read.portal(), Some(PortalId(1)));
    let d = read.finish();
    assert_eq!(d.queued(), 1, "a duplicate field is not readable");
    assert_eq!(
        d.invalid[0].portal_id,
        Some(PortalId(1)),
        "kept under the portal the key was chosen by"
    );
}

#[test]
fn nesting_depth_ignores_brackets_in_strings() {
    assert_eq!(nesting_depth(r#"{"a":"[[[{{{\"]]]"}"#), 1);
    assert_eq!(nesting_depth(r#"{"a":[{"b":[]}]}"#), 4);
    let deep = format!(r#"{{"x":{}1{}}}"#, "[".repeat(31), "]".repeat(31));
    assert_eq!(nesting_depth(&deep), 32);
}
