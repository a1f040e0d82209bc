//! The impact.com side's control API: what arrived (JSON and an HTML page),
//! faults, accounts.

use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use chrono::{DateTime, TimeZone, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use super::faults::{Fault, FaultPlan};
use super::{FakeImpact, Submission};
use crate::html_escape;

pub(crate) fn routes() -> Router<FakeImpact> {
    Router::new()
        .route("/", get(page))
        .route("/_sandbox", get(page))
        .route("/_sandbox/submissions", get(submissions).delete(clear))
        .route("/_sandbox/faults", put(set_faults).delete(clear_faults))
        .route("/_sandbox/accounts", get(accounts))
        .route("/_sandbox/outcomes", put(set_outcome))
        .route(
            "/_sandbox/event-types",
            get(event_types).put(define_event_types),
        )
}

#[derive(Debug, Default, Deserialize)]
struct Filter {
    account: Option<String>,
    order_id: Option<String>,
    /// RFC 3339 or epoch milliseconds.
    since: Option<String>,
    /// Include rejected and faulted requests.
    #[serde(default)]
    all: bool,
}

fn parse_since(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(ms) = s.parse::<i64>() {
        return Utc.timestamp_millis_opt(ms).single();
    }
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn select(imp: &FakeImpact, f: &Filter) -> Result<Vec<Submission>, String> {
    let since = match &f.since {
        Some(s) => Some(parse_since(s).ok_or_else(|| format!("since: not a date: {s}"))?),
        None => None,
    };
    Ok(imp
        .requests()
        .into_iter()
        .filter(|s| f.all || s.accepted())
        .filter(|s| f.account.as_ref().is_none_or(|a| &s.account_sid == a))
        .filter(|s| {
            f.order_id
                .as_deref()
                .is_none_or(|o| s.param("OrderId") == Some(o))
        })
        .filter(|s| since.is_none_or(|t| s.received_at >= t))
        .collect())
}

/// A submission with its parameters both in order and as an object.
fn view(s: &Submission) -> Value {
    let mut v = json!(s);
    v["fields"] = json!(s.map());
    v
}

async fn submissions(State(imp): State<FakeImpact>, Query(f): Query<Filter>) -> Response {
    match select(&imp, &f) {
        Ok(list) => {
            let items: Vec<Value> = list.iter().map(view).collect();
            Json(json!({"count": items.len(), "submissions": items})).into_response()
        }
        Err(e) => (StatusCode::BAD_REQUEST, Json(json!({"error": e}))).into_response(),
    }
}

async fn clear(State(imp): State<FakeImpact>) -> StatusCode {
    imp.clear();
    StatusCode::NO_CONTENT
}

#[derive(Debug, Deserialize)]
struct FaultsBody {
    #[serde(flatten)]
    plan: FaultPlan,
    /// Only during this many milliseconds (from `start_in_ms`).
    window_ms: Option<u64>,
    #[serde(default)]
    start_in_ms: u64,
    /// Exact faults for the next requests.
    #[serde(default)]
    next: Vec<Fault>,
}

async fn set_faults(State(imp): State<FakeImpact>, Json(body): Json<FaultsBody>) -> Json<Value> {
    match body.window_ms {
        Some(ms) => imp.set_faults_window(
            body.plan,
            Duration::from_millis(body.start_in_ms),
            Duration::from_millis(ms),
        ),
        None => imp.set_faults(body.plan),
    }
    imp.fail_next(body.next);
    Json(json!(imp.fault_plan()))
}

async fn clear_faults(State(imp): State<FakeImpact>) -> StatusCode {
    imp.clear_faults();
    StatusCode::NO_CONTENT
}

#[derive(Debug, Deserialize)]
struct OutcomeBody {
    order_id: String,
    error_type: String,
    error_reason: String,
}

/// `PUT /_sandbox/outcomes` `{"order_id","error_type","error_reason"}`:
/// that OrderId's submissions complete with this error.
async fn set_outcome(State(imp): State<FakeImpact>, Json(body): Json<OutcomeBody>) -> Json<Value> {
    imp.set_outcome(&body.order_id, &body.error_type, &body.error_reason);
    Json(
        json!({"order_id": body.order_id, "error_type": body.error_type, "error_reason": body.error_reason}),
    )
}

async fn accounts(State(imp): State<FakeImpact>) -> Json<Value> {
    // Auth tokens stay out: credentials are never returned once saved.
    let list: Vec<Value> = imp
        .accounts()
        .iter()
        .map(|a| json!({"account_sid": a.account_sid, "program_ids": a.program_ids}))
        .collect();
    Json(json!({"accounts": list}))
}

/// `{"Closed Won": 5001, ...}`: EventTypeCode → ActionTrackerId.
async fn event_types(State(imp): State<FakeImpact>) -> Json<Value> {
    Json(json!(imp.event_types()))
}

async fn define_event_types(
    State(imp): State<FakeImpact>,
    Json(body): Json<std::collections::BTreeMap<String, u64>>,
) -> Json<Value> {
    for (code, id) in body {
        imp.define_event_type(&code, id);
    }
    Json(json!(imp.event_types()))
}

async fn page(State(imp): State<FakeImpact>, Query(f): Query<Filter>) -> Response {
    let f = Filter { all: true, ..f };
    let list = match select(&imp, &f) {
        Ok(l) => l,
        Err(e) => return (StatusCode::BAD_REQUEST, Html(html_escape(&e))).into_response(),
    };
    let rows: String = list
        .iter()
        .rev()
        .map(|s| {
            let params: String = s
                .params
                .iter()
                .map(|(k, v)| format!("<b>{}</b>={}", html_escape(k), html_escape(v)))
                .collect::<Vec<_>>()
                .join("<br>");
            format!(
                "<tr><td>{}</td><td>{}</td><td>{:?}</td><td>{}</td><td>{}</td><td>{:?}</td><td>{}</td><td><code>{params}</code></td></tr>",
                s.seq,
                s.received_at.format("%Y-%m-%d %H:%M:%S%.3f"),
                s.kind,
                html_escape(&s.account_sid),
                s.http_status,
                s.status,
                html_escape(s.error.as_deref().unwrap_or("")),
            )
        })
        .collect();
    let accepted = list.iter().filter(|s| s.accepted()).count();
    Html(format!(
        "<!doctype html><html><head><meta charset=utf-8><title>impact.com sandbox</title>\
         <style>body{{font-family:sans-serif}}td,th{{border:1px solid #ccc;padding:4px;vertical-align:top}}\
         table{{border-collapse:collapse}}</style></head><body><h1>impact.com sandbox: what arrived</h1>\
         <p>{} requests, {accepted} accepted (newest first). JSON: <a href=/_sandbox/submissions>/_sandbox/submissions</a> \
         (filters: account, order_id, since, all=true).</p><table><tr><th>#</th><th>received</th><th>kind</th>\
         <th>account</th><th>HTTP</th><th>status</th><th>error</th><th>parameters</th></tr>{rows}</table></body></html>",
        list.len()
    ))
    .into_response()
}
