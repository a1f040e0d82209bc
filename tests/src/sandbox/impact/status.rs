//! `GET /Advertisers/{SID}/APISubmissions/{BatchId}`: a submission's outcome.

use std::time::Instant;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};

use super::FakeImpact;
use super::answer::{authenticate, reply, unauthorized};
use crate::sandbox::lock;

pub(crate) async fn api_submission(
    State(imp): State<FakeImpact>,
    Path((sid, batch_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let xml = lock(&imp.state.settings).xml_without_accept
        && !headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("json"));
    match authenticate(&imp, &headers) {
        Some(a) if a.account_sid == sid => {}
        Some(_) => return unauthorized(xml, StatusCode::FORBIDDEN, "Forbidden"),
        None => {
            return unauthorized(
                xml,
                StatusCode::UNAUTHORIZED,
                "Unauthorized: invalid Account SID or Auth Token",
            );
        }
    }
    let found = lock(&imp.state.log)
        .iter()
        .find(|s| s.batch_id.as_deref() == Some(batch_id.as_str()) && s.account_sid == sid)
        .cloned();
    let Some(sub) = found else {
        return reply(
            xml,
            StatusCode::NOT_FOUND,
            json!({"Status": "ERROR", "Message": "Not Found"}),
        );
    };
    let delay = lock(&imp.state.settings).processing_delay;
    let arrived = lock(&imp.state.batches)
        .get(&batch_id)
        .copied()
        .unwrap_or_else(Instant::now);
    let status = if arrived.elapsed() < delay {
        "Queued"
    } else {
        "Complete"
    };
    let (error_type, reason) = match (&sub.error, status) {
        (Some(e), "Complete") => (Value::from("Validation"), Value::from(e.clone())),
        _ => (Value::Null, Value::Null),
    };
    reply(
        xml,
        StatusCode::OK,
        json!({
            "BatchId": batch_id,
            "Status": status,
            "SubmittedDate": sub.received_at.to_rfc3339(),
            "ErrorType": error_type,
            "ErrorReason": reason,
            "Uri": format!("/Advertisers/{sid}/APISubmissions/{batch_id}"),
        }),
    )
}
