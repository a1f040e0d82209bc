//! The actions the fake knows: every accepted conversion is an action,
//! identified (for `PUT`/`DELETE /Actions`) by `ActionTrackerId` + `OrderId`.
//! A conversion sent with an `EventTypeCode` matches the tracker id that
//! code was defined with ([`FakeImpact::define_event_type`]); an
//! `ActionId` is accepted as is (the fake assigns none).

use std::collections::BTreeMap;

use super::FakeImpact;
use super::validate::{FieldError, err};
use crate::lock;

/// What impact.com answers for an action it cannot find or change;
/// empty when the request may proceed. An accepted reversal is remembered.
pub(crate) fn check(
    imp: &FakeImpact,
    sid: &str,
    params: &[(String, String)],
    reversal: bool,
) -> Vec<FieldError> {
    let map: BTreeMap<&str, &str> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .filter(|(_, v)| !v.is_empty())
        .collect();
    if map.contains_key("ActionId") {
        return vec![];
    }
    let (Some(tracker), Some(order)) = (map.get("ActionTrackerId"), map.get("OrderId")) else {
        return vec![];
    };
    if tracker.parse::<u64>().is_err() {
        return vec![err("ActionTrackerId", "ActionTrackerId must be an integer")];
    }
    let codes: Vec<String> = lock(&imp.state.event_types)
        .iter()
        .filter(|(_, id)| id.to_string() == *tracker)
        .map(|(code, _)| format!("code:{code}"))
        .collect();
    let exists = {
        let seen = lock(&imp.state.seen);
        let key = |k: String| (sid.to_owned(), k, (*order).to_owned());
        seen.contains(&key(format!("id:{tracker}")))
            || codes.into_iter().any(|c| seen.contains(&key(c)))
    };
    if !exists {
        return vec![err(
            "OrderId",
            format!("No action found for ActionTrackerId {tracker} and OrderId {order}"),
        )];
    }
    let id = (sid.to_owned(), (*tracker).to_owned(), (*order).to_owned());
    let mut reversed = lock(&imp.state.reversed);
    if reversed.contains(&id) {
        return vec![err(
            "OrderId",
            format!("The action for OrderId {order} was reversed already"),
        )];
    }
    if reversal {
        reversed.insert(id);
    }
    vec![]
}
