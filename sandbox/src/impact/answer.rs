//! How the fake impact.com answers: JSON or XML bodies, validation-error
//! shapes, Basic auth, and the hourly rate-limit headers.

use std::time::{Duration, Instant};

use axum::Json;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::{Value, json};

use super::validate::FieldError;
use super::{ErrorStyle, FakeImpact};
use crate::{ImpactAccount, lock};

pub(crate) const DEFAULT_HOURLY: u32 = 1_000;

/// An answer in JSON, or in impact.com's XML when asked for.
pub(crate) fn reply(xml: bool, status: StatusCode, v: Value) -> Response {
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
            Value::String(s) => {
                out.push_str(&format!("<{name}>{}</{name}>", crate::html_escape(s)))
            }
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

pub(crate) fn validation_body(style: ErrorStyle, errors: &[FieldError]) -> Value {
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
pub(crate) fn authenticate(imp: &FakeImpact, headers: &HeaderMap) -> Option<ImpactAccount> {
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

pub(crate) fn unauthorized(xml: bool, status: StatusCode, message: &str) -> Response {
    let mut resp = reply(xml, status, json!({"Status": "ERROR", "Message": message}));
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"impact.com\""),
    );
    resp
}

/// Counts a request in the account's hourly window: (limit, remaining, reset seconds, over).
pub(crate) fn count_hourly(imp: &FakeImpact, sid: &str) -> (u32, u32, u64, bool) {
    tally(imp, sid, 1)
}

/// The account's window as it stands, the request not counted.
pub(crate) fn peek_hourly(imp: &FakeImpact, sid: &str) -> (u32, u32, u64, bool) {
    tally(imp, sid, 0)
}

fn tally(imp: &FakeImpact, sid: &str, cost: u32) -> (u32, u32, u64, bool) {
    let (enforced, window) = {
        let s = lock(&imp.state.settings);
        (
            s.rate_limit_per_hour,
            s.rate_window.max(Duration::from_millis(1)),
        )
    };
    let limit = enforced.unwrap_or(DEFAULT_HOURLY);
    let mut hourly = lock(&imp.state.hourly);
    let now = Instant::now();
    let w = hourly.entry(sid.to_string()).or_insert((now, 0));
    if now.duration_since(w.0) >= window {
        *w = (now, 0);
    }
    w.1 += cost;
    // Whole seconds until the reset, rounded up (never 0 before it).
    let left = window.saturating_sub(now.duration_since(w.0));
    let reset = left.as_secs() + u64::from(left.subsec_nanos() > 0);
    (
        limit,
        limit.saturating_sub(w.1),
        reset,
        enforced.is_some() && w.1 > limit,
    )
}

pub(crate) fn rate_headers(resp: &mut Response, limit: u32, remaining: u32, reset: u64) {
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
