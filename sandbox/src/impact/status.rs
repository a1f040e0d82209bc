//! `GET /Advertisers/{SID}/APISubmissions/{BatchId}`: a submission's outcome.

use std::time::Instant;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use super::reads::{ReadKind, answer, gate};
use super::{FakeImpact, Submission};
use crate::lock;

pub(crate) async fn api_submission(
    State(imp): State<FakeImpact>,
    Path((sid, batch_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    // Reads count against the account's hourly budget like any request.
    let g = match gate(&imp, &headers, &sid, ReadKind::Submission) {
        Ok(g) => g,
        Err(resp) => return *resp,
    };
    let found = lock(&imp.state.log)
        .iter()
        .find(|s| s.batch_id.as_deref() == Some(batch_id.as_str()) && s.account_sid == sid)
        .cloned();
    let Some(sub) = found else {
        return answer(
            &imp,
            ReadKind::Submission,
            &sid,
            &g,
            StatusCode::NOT_FOUND,
            json!({"Status": "ERROR", "Message": "Not Found"}),
        );
    };
    let complete = completed_at(&imp, &sub).is_some();
    let (error_type, reason) = match (complete, error_of(&imp, &sub)) {
        (true, Some((t, r))) => (Value::from(t), Value::from(r)),
        _ => (Value::Null, Value::Null),
    };
    let body = json!({
        "BatchId": batch_id,
        "Status": if complete { "Complete" } else { "Queued" },
        "SubmissionDate": sub.received_at.to_rfc3339(),
        "ErrorType": error_type,
        "ErrorReason": reason,
        "Uri": format!("/Advertisers/{sid}/APISubmissions/{batch_id}"),
    });
    answer(&imp, ReadKind::Submission, &sid, &g, StatusCode::OK, body)
}

/// When an accepted submission completed (its processing delay after it
/// arrived), if it has.
pub(crate) fn completed_at(imp: &FakeImpact, sub: &Submission) -> Option<Instant> {
    let delay = lock(&imp.state.settings).processing_delay;
    let arrived = sub
        .batch_id
        .as_ref()
        .and_then(|b| lock(&imp.state.batches).get(b).copied())
        .unwrap_or_else(Instant::now);
    let done = arrived + delay;
    (Instant::now() >= done).then_some(done)
}

/// The `(ErrorType, ErrorReason)` a submission completes with; `None` when
/// it completes without error (and, a conversion, becomes an action). A
/// forced outcome (`set_outcome`) wins; a repeated OrderId adds
/// `CONV_DUPLICATE` to its codes.
pub(crate) fn error_of(imp: &FakeImpact, sub: &Submission) -> Option<(String, String)> {
    let forced = sub
        .param("OrderId")
        .and_then(|o| lock(&imp.state.outcomes).get(o).cloned())
        .filter(|(t, r)| !(t.trim().is_empty() && r.trim().is_empty()));
    match (forced, sub.is_duplicate()) {
        (Some((t, r)), false) => Some((t, r)),
        (Some((t, r)), true) => {
            let mut codes: Vec<&str> = r.split_whitespace().collect();
            if !codes.contains(&"CONV_DUPLICATE") {
                codes.push("CONV_DUPLICATE");
            }
            Some((t, codes.join(" ")))
        }
        (None, true) => Some(("Validation".into(), "CONV_DUPLICATE".into())),
        (None, false) => None,
    }
}
