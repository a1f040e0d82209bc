use chrono::{DateTime, Duration, Utc};

use super::credited::{EventRef, ListedAction, Pending, credited};
use super::*;

#[test]
fn an_error_reason_is_a_list_of_codes() {
    assert_eq!(
        reason_codes(Some(" CONTRACT_NOT_FOUND  RESTRICTED_PROMOCODE ")),
        ["CONTRACT_NOT_FOUND", "RESTRICTED_PROMOCODE"]
    );
    assert!(reason_codes(Some("   ")).is_empty());
    assert!(reason_codes(None).is_empty());
    assert_eq!(
        normalized_reason(Some("CONTRACT_NOT_FOUND\tRESTRICTED_PROMOCODE")).as_deref(),
        Some("CONTRACT_NOT_FOUND RESTRICTED_PROMOCODE")
    );
    assert_eq!(normalized_reason(Some("")), None);
}

#[test]
fn verdicts_read_every_code_and_the_error_type() {
    use Outcome::*;
    assert_eq!(verdict(None, None, 1), Complete);
    assert_eq!(verdict(Some(""), Some(" "), 1), Complete);
    assert_eq!(
        verdict(Some("Contract Error"), Some("CONTRACT_NOT_FOUND"), 1),
        Rejected
    );
    // An ErrorType without a reason is an error all the same.
    assert_eq!(verdict(Some("Validation"), None, 1), Rejected);
    assert_eq!(verdict(Some("Validation"), Some(""), 2), Rejected);
    // CONV_DUPLICATE anywhere in the list: our resend, or a real duplicate.
    assert_eq!(verdict(None, Some("CONV_DUPLICATE"), 1), Rejected);
    assert_eq!(verdict(None, Some("CONV_DUPLICATE"), 2), DuplicateResend);
    assert_eq!(
        verdict(
            Some("Validation"),
            Some("RESTRICTED_PROMOCODE conv_duplicate"),
            2
        ),
        DuplicateResend
    );
    assert_eq!(
        verdict(
            Some("Validation"),
            Some("RESTRICTED_PROMOCODE CONV_DUPLICATE"),
            1
        ),
        Rejected
    );
    assert_eq!(Outcome::DuplicateResend.as_str(), "duplicate_resend");
}

#[test]
fn labels_stay_bounded() {
    use Outcome::*;
    assert_eq!(reason_label(Complete, None), "none");
    assert_eq!(reason_label(Rejected, Some("")), "unspecified");
    assert_eq!(
        reason_label(Rejected, Some("contract_not_found")),
        "CONTRACT_NOT_FOUND"
    );
    assert_eq!(
        reason_label(Rejected, Some("SOMETHING_NEW RESTRICTED_PROMOCODE")),
        "RESTRICTED_PROMOCODE"
    );
    assert_eq!(
        reason_label(Rejected, Some("anything a remote says")),
        "other"
    );
    assert_eq!(
        reason_label(DuplicateResend, Some("RESTRICTED_PROMOCODE CONV_DUPLICATE")),
        "CONV_DUPLICATE"
    );
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .expect("a date")
}

fn pending(id: i64, order: &str, event: EventRef) -> Pending {
    Pending {
        id,
        campaign_id: "1000".into(),
        order_id: order.into(),
        event,
        recorded_at: at("2026-12-04T10:00:00Z"),
    }
}

fn action(order: &str, tracker: &str, code: &str) -> ListedAction {
    ListedAction {
        campaign_id: "1000".into(),
        order_id: order.into(),
        tracker_id: Some(tracker.into()),
        event_code: (!code.is_empty()).then(|| code.into()),
        state: Some("PENDING".into()),
        created_at: Some(at("2026-12-04T10:01:00Z")),
    }
}

#[test]
fn listed_actions_credit_their_conversions_only() {
    let slack = Duration::minutes(5);
    let p = [
        pending(1, "A", EventRef::Code("Sale".into())),
        pending(2, "B", EventRef::Tracker("4000".into())),
        pending(3, "C", EventRef::Code("Sale".into())),
        pending(4, "D", EventRef::Code("Sale".into())),
        pending(5, "E", EventRef::Code("Sale".into())),
        pending(6, "F", EventRef::Code("Sale".into())),
    ];
    let old = ListedAction {
        created_at: Some(at("2026-12-01T00:00:00Z")),
        ..action("D", "4000", "Sale")
    };
    let reversed = ListedAction {
        state: Some("REVERSED".into()),
        ..action("E", "4000", "Sale")
    };
    let elsewhere = ListedAction {
        campaign_id: "2000".into(),
        ..action("F", "4000", "Sale")
    };
    let listed = [
        action("A", "4000", "SALE"),
        action("B", "4000", ""),
        // Another event type with the same OrderId.
        action("C", "4001", "Lead"),
        old,
        reversed,
        elsewhere,
        action("unrelated", "4000", "Sale"),
    ];
    assert_eq!(credited(&p, &listed, slack), [1, 2]);
    // A code that cannot be compared (the action shows none): not decided here.
    let uncoded = [action("A", "4000", "")];
    assert!(credited(&p, &uncoded, slack).is_empty());
}

#[test]
fn an_action_fitting_two_conversions_decides_neither() {
    let p = [
        pending(1, "A", EventRef::Code("Sale".into())),
        Pending {
            id: 2,
            ..pending(2, "A", EventRef::Tracker("4000".into()))
        },
    ];
    assert!(credited(&p, &[action("A", "4000", "Sale")], Duration::minutes(5)).is_empty());
}

#[test]
fn the_event_type_comes_from_the_parameters() {
    let params = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    assert_eq!(
        EventRef::of(&params(&[
            ("EventTypeCode", "Sale"),
            ("EventTypeId", " 4000 ")
        ])),
        Some(EventRef::Tracker("4000".into()))
    );
    assert_eq!(
        EventRef::of(&params(&[
            ("ActionTrackerId", ""),
            ("EventTypeCode", "Sale")
        ])),
        Some(EventRef::Code("Sale".into()))
    );
    assert_eq!(EventRef::of(&params(&[("OrderId", "A")])), None);
}
