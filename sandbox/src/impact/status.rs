//! `GET /Advertisers/{SID}/APISubmissions/{BatchId}`: a submission's outcome.

use std::time::Instant;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};

use super::FakeImpact;
use super::answer::{authenticate, count_hourly, rate_headers, reply, unauthorized};
use crate::lock;

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
    // Reads count against the account's hourly budget like any request.
    let (limit, remaining, reset, over) = count_hourly(&imp, &sid);
    if over {
        lock(&imp.state.status_reads).push(429);
        let mut resp = reply(
            xml,
            StatusCode::TOO_MANY_REQUESTS,
            json!({"Status": "ERROR", "Message": "Too Many Requests"}),
        );
        rate_headers(&mut resp, limit, 0, reset);
        return resp;
    }
    let found = lock(&imp.state.log)
        .iter()
        .find(|s| s.batch_id.as_deref() == Some(batch_id.as_str()) && s.account_sid == sid)
        .cloned();
    let Some(sub) = found else {
        lock(&imp.state.status_reads).push(404);
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
    let forced = sub
        .param("OrderId")
        .and_then(|o| lock(&imp.state.outcomes).get(o).cloned());
    let (error_type, reason) = match (&sub.error, forced, status) {
        (_, Some((t, r)), "Complete") => (Value::from(t), Value::from(r)),
        (Some(e), None, "Complete") => (Value::from("Validation"), Value::from(e.clone())),
        _ => (Value::Null, Value::Null),
    };
    lock(&imp.state.status_reads).push(200);
    let mut resp = reply(
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
    );
    rate_headers(&mut resp, limit, remaining, reset);
    resp
}
