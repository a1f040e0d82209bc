//! impact.com's endpoints: Conversions, Actions (update, reversal) and API
//! submissions.

use std::time::{Duration, Instant};

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use base64::Engine as _;
use chrono::Utc;
use serde_json::{Value, json};

use super::faults::Fault;
use super::validate::{self, FieldError};
use super::{ErrorStyle, FakeImpact, Submission, SubmissionKind, SubmissionStatus, body};
use crate::sandbox::serve::DropConnection;
use crate::sandbox::{ImpactAccount, lock};

const DEFAULT_HOURLY: u32 = 1_000;
const HOUR: Duration = Duration::from_secs(3600);

pub(crate) fn routes() -> Router<FakeImpact> {
    Router::new()
        .route("/Advertisers/{sid}/Conversions", post(conversion))
        .route("/Advertisers/{sid}/Conversions.json", post(conversion))
        .route(
            "/Advertisers/{sid}/Actions",
            put(update_action).delete(reverse_action),
        )
        .route(
            "/Advertisers/{sid}/APISubmissions/{batch_id}",
            get(api_submission),
        )
}

async fn conversion(
    State(imp): State<FakeImpact>,
    Path(sid): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    receive(imp, SubmissionKind::Conversion, sid, headers, None, body).await
}

async fn update_action(
    State(imp): State<FakeImpact>,
    Path(sid): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    receive(imp, SubmissionKind::ActionUpdate, sid, headers, q, body).await
}

async fn reverse_action(
    State(imp): State<FakeImpact>,
    Path(sid): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    receive(imp, SubmissionKind::ActionReversal, sid, headers, q, body).await
}

/// An answer in JSON, or in impact.com's XML when asked for.
fn reply(xml: bool, status: StatusCode, v: Value) -> Response {
    if !xml {
        return (status, Json(v)).into_response();
    }
    fn render(name: &str, v: &Value, out: &mut String) {
        match v {
            Value::Object(m) => {
                out.push_str(&format!("<{name}>"));
                for (k, v) in m {
                    render(k, v, out);
                }
                out.push_str(&format!("</{name}>"));
            }
            Value::Array(items) => {
                out.push_str(&format!("<{name}>"));
                let item = name.strip_suffix('s').unwrap_or(name);
                items.iter().for_each(|i| render(item, i, out));
                out.push_str(&format!("</{name}>"));
            }
            Value::Null => out.push_str(&format!("<{name}/>")),
            Value::String(s) => out.push_str(&format!(
                "<{name}>{}</{name}>",
                crate::sandbox::html_escape(s)
            )),
            other => out.push_str(&format!("<{name}>{other}</{name}>")),
        }
    }
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
    render("ImpactRadiusResponse", &v, &mut out);
    (
        status,
        [(header::CONTENT_TYPE, "application/xml; charset=utf-8")],
        out,
    )
        .into_response()
}

fn validation_body(style: ErrorStyle, errors: &[FieldError]) -> Value {
    match style {
        ErrorStyle::Capitalized => json!({
            "Status": "ERROR",
            "Message": "Validation Failed",
            "Errors": errors.iter().map(|e| json!({"Field": e.field, "Message": e.message})).collect::<Vec<_>>(),
        }),
        ErrorStyle::Lowercase => json!({
            "Status": "ERROR",
            "errors": errors.iter().map(|e| json!({"field": e.field, "level": "ERROR", "message": e.message})).collect::<Vec<_>>(),
        }),
    }
}

/// The Basic-auth account, if the credentials match one.
fn authenticate(imp: &FakeImpact, headers: &HeaderMap) -> Option<ImpactAccount> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':')?;
    lock(&imp.state.accounts)
        .iter()
        .find(|a| a.account_sid == user && a.auth_token == password)
        .cloned()
}

fn unauthorized(xml: bool, status: StatusCode, message: &str) -> Response {
    let mut resp = reply(xml, status, json!({"Status": "ERROR", "Message": message}));
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"impact.com\""),
    );
    resp
}

/// Counts a request in the account's hourly window: (limit, remaining, reset seconds, over).
fn count_hourly(imp: &FakeImpact, sid: &str) -> (u32, u32, u64, bool) {
    let enforced = lock(&imp.state.settings).rate_limit_per_hour;
    let limit = enforced.unwrap_or(DEFAULT_HOURLY);
    let mut hourly = lock(&imp.state.hourly);
    let now = Instant::now();
    let w = hourly.entry(sid.to_string()).or_insert((now, 0));
    if now.duration_since(w.0) >= HOUR {
        *w = (now, 0);
    }
    w.1 += 1;
    let reset = HOUR.saturating_sub(now.duration_since(w.0)).as_secs();
    (
        limit,
        limit.saturating_sub(w.1),
        reset,
        enforced.is_some() && w.1 > limit,
    )
}

fn rate_headers(resp: &mut Response, limit: u32, remaining: u32, reset: u64) {
    for (name, value) in [
        ("X-RateLimit-Limit", limit as u64),
        ("X-RateLimit-Remaining", remaining as u64),
        ("X-RateLimit-Reset", reset),
    ] {
        if let Ok(v) = HeaderValue::from_str(&value.to_string()) {
            resp.headers_mut().insert(name, v);
        }
    }
}

async fn receive(
    imp: FakeImpact,
    kind: SubmissionKind,
    sid: String,
    headers: HeaderMap,
    query: Option<String>,
    raw: axum::body::Bytes,
) -> Response {
    let (latency, style, xml_without_accept) = {
        let s = lock(&imp.state.settings);
        (s.latency, s.error_style, s.xml_without_accept)
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let accept_json = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.to_ascii_lowercase().contains("application/json"));
    let xml = xml_without_accept && !accept_json;
    let parsed = body::parse(content_type.as_deref(), &raw);
    let mut params = parsed.clone().unwrap_or_default();
    if kind != SubmissionKind::Conversion {
        params.extend(body::query(query.as_deref()));
    }
    let mut rec = Submission {
        seq: 0,
        kind,
        account_sid: sid.clone(),
        params,
        received_at: Utc::now(),
        batch_id: None,
        http_status: 0,
        status: SubmissionStatus::Faulted,
        error: None,
        accept_json,
        content_type,
    };
    let fault = lock(&imp.state.faults).decide();
    match fault {
        Some(Fault::RateLimited) => {
            let mut resp = reply(
                xml,
                StatusCode::TOO_MANY_REQUESTS,
                json!({"Status": "ERROR", "Message": "Too Many Requests"}),
            );
            rate_headers(&mut resp, DEFAULT_HOURLY, 0, 60);
            return imp.record(
                rec,
                429,
                SubmissionStatus::Faulted,
                Some("injected 429".into()),
                resp,
            );
        }
        Some(Fault::ServerError(code)) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            let resp = reply(
                xml,
                status,
                json!({"Status": "ERROR", "Message": "Service temporarily unavailable"}),
            );
            return imp.record(
                rec,
                code,
                SubmissionStatus::Faulted,
                Some(format!("injected {code}")),
                resp,
            );
        }
        Some(Fault::Drop) => {
            let mut resp = StatusCode::INTERNAL_SERVER_ERROR.into_response();
            resp.extensions_mut().insert(DropConnection);
            return imp.record(
                rec,
                0,
                SubmissionStatus::Faulted,
                Some("injected dropped connection".into()),
                resp,
            );
        }
        Some(Fault::SlowMs(ms)) => tokio::time::sleep(Duration::from_millis(ms)).await,
        _ => {}
    }
    let Some(account) = authenticate(&imp, &headers) else {
        let resp = unauthorized(
            xml,
            StatusCode::UNAUTHORIZED,
            "Unauthorized: invalid Account SID or Auth Token",
        );
        return imp.record(
            rec,
            401,
            SubmissionStatus::Unauthorized,
            Some("bad credentials".into()),
            resp,
        );
    };
    if account.account_sid != sid {
        let resp = unauthorized(
            xml,
            StatusCode::FORBIDDEN,
            "Forbidden: the Account SID in the URL does not match the credentials",
        );
        return imp.record(
            rec,
            403,
            SubmissionStatus::Unauthorized,
            Some("account mismatch".into()),
            resp,
        );
    }
    let (limit, remaining, reset, over) = count_hourly(&imp, &sid);
    if over {
        let mut resp = reply(
            xml,
            StatusCode::TOO_MANY_REQUESTS,
            json!({"Status": "ERROR", "Message": "Too Many Requests"}),
        );
        rate_headers(&mut resp, limit, 0, reset);
        return imp.record(
            rec,
            429,
            SubmissionStatus::Faulted,
            Some("hourly rate limit".into()),
            resp,
        );
    }
    let errors = match (&parsed, kind) {
        (Err(msg), _) => vec![FieldError {
            field: "Body".into(),
            message: msg.clone(),
        }],
        (Ok(_), SubmissionKind::Conversion) => validate::conversion(&rec.params, &account),
        (Ok(_), SubmissionKind::ActionUpdate) => validate::action(&rec.params, false),
        (Ok(_), SubmissionKind::ActionReversal) => validate::action(&rec.params, true),
    };
    if !errors.is_empty() {
        let summary = errors
            .iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect::<Vec<_>>()
            .join("; ");
        let mut resp = reply(
            xml,
            StatusCode::BAD_REQUEST,
            validation_body(style, &errors),
        );
        rate_headers(&mut resp, limit, remaining, reset);
        return imp.record(rec, 400, SubmissionStatus::Rejected, Some(summary), resp);
    }
    let batch_id = uuid::Uuid::new_v4().to_string().to_uppercase();
    let duplicate = kind == SubmissionKind::Conversion && {
        let map = rec.map();
        let key = validate::event_type_key(&map).unwrap_or_default();
        let order = map.get("OrderId").cloned().unwrap_or_default();
        !lock(&imp.state.seen).insert((sid.clone(), key, order))
    };
    rec.batch_id = Some(batch_id.clone());
    lock(&imp.state.batches).insert(batch_id.clone(), Instant::now());
    let queued_uri = format!("/Advertisers/{sid}/APISubmissions/{batch_id}");
    let mut resp = reply(
        xml,
        StatusCode::OK,
        json!({"Status": "QUEUED", "QueuedUri": queued_uri}),
    );
    rate_headers(&mut resp, limit, remaining, reset);
    if fault == Some(Fault::DropAfterProcessing) {
        resp.extensions_mut().insert(DropConnection);
    }
    let error = duplicate.then(|| "CONV_DUPLICATE".to_string());
    let resp = imp.record(rec, 200, SubmissionStatus::Queued, error, resp);
    imp.state.accepted.send_modify(|n| *n += 1);
    resp
}

impl FakeImpact {
    fn record(
        &self,
        mut rec: Submission,
        http: u16,
        status: SubmissionStatus,
        error: Option<String>,
        resp: Response,
    ) -> Response {
        let mut log = lock(&self.state.log);
        rec.seq = log.len() as u64 + 1;
        rec.http_status = if resp.extensions().get::<DropConnection>().is_some() && http != 200 {
            0
        } else {
            http
        };
        rec.status = status;
        rec.error = error;
        log.push(rec);
        resp
    }
}

async fn api_submission(
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
