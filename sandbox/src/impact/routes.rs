//! impact.com's endpoints: Conversions, Actions (update, reversal, list),
//! API submissions and programs.

use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::Utc;
use serde_json::json;

use super::answer::{
    DEFAULT_HOURLY, authenticate, rate_headers, reply, unauthorized, validation_body,
};
use super::faults::Fault;
use super::validate::{self, FieldError};
use super::{FakeImpact, Submission, SubmissionKind, SubmissionStatus, body};
use crate::lock;
use crate::serve::DropConnection;

pub(crate) fn routes() -> Router<FakeImpact> {
    Router::new()
        .route("/Advertisers/{sid}/Conversions", post(submit::<CONVERSION>))
        .route(
            "/Advertisers/{sid}/Conversions.json",
            post(submit::<CONVERSION>),
        )
        .route(
            "/Advertisers/{sid}/Actions",
            get(super::listing::list_actions)
                .put(submit::<UPDATE>)
                .delete(submit::<REVERSAL>),
        )
        .route(
            "/Advertisers/{sid}/Campaigns/{program_id}",
            get(super::programs::program),
        )
        .route(
            "/Advertisers/{sid}/APISubmissions/{batch_id}",
            get(super::status::api_submission),
        )
}

/// Conversions, action updates and reversals share one handler; the route
/// names the kind (a const parameter: axum handlers take no extra state).
async fn submit<const KIND: u8>(
    State(imp): State<FakeImpact>,
    Path(sid): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let (kind, q) = match KIND {
        CONVERSION => (SubmissionKind::Conversion, None),
        UPDATE => (SubmissionKind::ActionUpdate, q),
        _ => (SubmissionKind::ActionReversal, q),
    };
    receive(imp, kind, sid, headers, q, body).await
}

const CONVERSION: u8 = 0;
const UPDATE: u8 = 1;
const REVERSAL: u8 = 2;

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
    let (limit, remaining, reset, over) = super::reads::count_submission(&imp, &sid, kind);
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
    let mut errors = match (&parsed, kind) {
        (Err(msg), _) => vec![FieldError {
            field: "Body".into(),
            message: msg.clone(),
        }],
        (Ok(_), SubmissionKind::Conversion) => validate::conversion(&rec.params, &account),
        (Ok(_), SubmissionKind::ActionUpdate) => validate::action(&rec.params, false),
        (Ok(_), SubmissionKind::ActionReversal) => validate::action(&rec.params, true),
    };
    if errors.is_empty() && kind != SubmissionKind::Conversion {
        errors = super::actions::check(
            &imp,
            &sid,
            &rec.params,
            kind == SubmissionKind::ActionReversal,
        );
    }
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
