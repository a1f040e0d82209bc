//! The fake impact.com's reads (`GET` of API submissions, the Actions list,
//! programs): Basic auth, the account's hourly budget with impact.com's
//! `X-RateLimit-*` headers, and a log of every read; and the knobs that
//! shape the budget in tests (a shorter window, conversions not counted).

use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use serde::Serialize;
use serde_json::{Value, json};

use super::answer::{authenticate, count_hourly, peek_hourly, rate_headers, reply, unauthorized};
use super::{FakeImpact, SubmissionKind};
use crate::lock;

/// Which read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ReadKind {
    /// `GET /Advertisers/{SID}/APISubmissions/{BatchId}`.
    Submission,
    /// `GET /Advertisers/{SID}/Actions`.
    Actions,
    /// `GET /Advertisers/{SID}/Campaigns/{ProgramId}`.
    Program,
}

/// One read as answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiRead {
    /// Which endpoint.
    pub kind: ReadKind,
    /// The Account SID in the URL.
    pub account_sid: String,
    /// The HTTP status answered.
    pub status: u16,
    /// When it was answered.
    pub at: Instant,
}

/// A read let through: how to answer it.
pub(crate) struct Gate {
    pub(crate) xml: bool,
    pub(crate) limit: u32,
    pub(crate) remaining: u32,
    pub(crate) reset: u64,
}

/// Authenticates a read of account `sid` and counts it in the account's
/// window; `Err` is the answer already made (401, 403, 429), logged.
pub(crate) fn gate(
    imp: &FakeImpact,
    headers: &HeaderMap,
    sid: &str,
    kind: ReadKind,
) -> Result<Gate, Box<Response>> {
    let xml = lock(&imp.state.settings).xml_without_accept
        && !headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("json"));
    let refused = |status: StatusCode, message: &str| {
        record(imp, kind, sid, status.as_u16());
        unauthorized(xml, status, message)
    };
    match authenticate(imp, headers) {
        Some(a) if a.account_sid == sid => {}
        Some(_) => return Err(Box::new(refused(StatusCode::FORBIDDEN, "Forbidden"))),
        None => {
            return Err(Box::new(refused(
                StatusCode::UNAUTHORIZED,
                "Unauthorized: invalid Account SID or Auth Token",
            )));
        }
    }
    let (limit, remaining, reset, over) = count_hourly(imp, sid);
    if over {
        record(imp, kind, sid, 429);
        let mut resp = reply(
            xml,
            StatusCode::TOO_MANY_REQUESTS,
            json!({"Status": "ERROR", "Message": "Too Many Requests"}),
        );
        rate_headers(&mut resp, limit, 0, reset);
        return Err(Box::new(resp));
    }
    Ok(Gate {
        xml,
        limit,
        remaining,
        reset,
    })
}

/// Answers a read let through by [`gate`] (with the rate-limit headers), logged.
pub(crate) fn answer(
    imp: &FakeImpact,
    kind: ReadKind,
    sid: &str,
    g: &Gate,
    status: StatusCode,
    body: Value,
) -> Response {
    record(imp, kind, sid, status.as_u16());
    let mut resp = reply(g.xml, status, body);
    rate_headers(&mut resp, g.limit, g.remaining, g.reset);
    resp
}

fn record(imp: &FakeImpact, kind: ReadKind, sid: &str, status: u16) {
    if kind == ReadKind::Submission {
        lock(&imp.state.status_reads).push(status);
    }
    lock(&imp.state.reads).push(ApiRead {
        kind,
        account_sid: sid.to_owned(),
        status,
        at: Instant::now(),
    });
}

/// Counts a Conversions/Actions request in the account's window, unless
/// conversions are set not to count (then the headers show the window as
/// it stands): (limit, remaining, reset seconds, over).
pub(crate) fn count_submission(
    imp: &FakeImpact,
    sid: &str,
    kind: SubmissionKind,
) -> (u32, u32, u64, bool) {
    let free =
        kind == SubmissionKind::Conversion && lock(&imp.state.settings).conversions_unlimited;
    if free {
        peek_hourly(imp, sid)
    } else {
        count_hourly(imp, sid)
    }
}

impl FakeImpact {
    /// Every read answered (API submissions, actions, programs), in order.
    pub fn reads(&self) -> Vec<ApiRead> {
        lock(&self.state.reads).clone()
    }

    /// The length of the rate-limit window (impact.com's is an hour): a
    /// shorter one runs an hour's traffic in seconds; `X-RateLimit-Reset`
    /// counts down to its end.
    pub fn set_rate_window(&self, window: Duration) {
        lock(&self.state.settings).rate_window = window;
    }

    /// Conversions do not count against the hourly limit (impact.com's
    /// rate-limit page: "Certain resources like Conversions are not
    /// limited"); the default counts them, the stricter reading.
    pub fn set_conversions_unlimited(&self, unlimited: bool) {
        lock(&self.state.settings).conversions_unlimited = unlimited;
    }

    /// The smallest `PageSize` the Actions list honours (impact.com: 2,000);
    /// lower it to page through a few actions in tests.
    pub fn set_actions_min_page_size(&self, size: u32) {
        lock(&self.state.settings).actions_min_page_size = size.max(1);
    }
}
