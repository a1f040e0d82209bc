//! The fake impact.com: Conversions, API submissions, Actions (changes and
//! the list), Programs; every request recorded; faults on request.

mod actions;
mod answer;
mod body;
mod control;
mod faults;
mod listing;
mod programs;
mod reads;
mod routes;
mod status;
mod validate;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::watch;

pub use faults::{Fault, FaultPlan};
pub use reads::{ApiRead, ReadKind};

use super::{ImpactAccount, SandboxConfig, lock};

/// Which endpoint a request hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum SubmissionKind {
    /// `POST /Advertisers/{SID}/Conversions`.
    Conversion,
    /// `PUT /Advertisers/{SID}/Actions`.
    ActionUpdate,
    /// `DELETE /Advertisers/{SID}/Actions`.
    ActionReversal,
}

/// What the fake answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum SubmissionStatus {
    /// 200 `QUEUED`.
    Queued,
    /// 400: validation failed (see `error`).
    Rejected,
    /// 401/403.
    Unauthorized,
    /// A fault was injected (429, 5xx, dropped); see `error`.
    Faulted,
}

/// One request as it arrived, and what became of it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Submission {
    /// Arrival order, from 1.
    pub seq: u64,
    /// Which endpoint.
    pub kind: SubmissionKind,
    /// The Account SID in the URL.
    pub account_sid: String,
    /// Parameters in the order sent.
    pub params: Vec<(String, String)>,
    /// When it arrived.
    pub received_at: DateTime<Utc>,
    /// The batch id of a queued request.
    pub batch_id: Option<String>,
    /// The HTTP status answered (0 when the connection was dropped unanswered).
    pub http_status: u16,
    /// What the fake did.
    pub status: SubmissionStatus,
    /// `CONV_DUPLICATE` for a repeated OrderId within an event type; the
    /// validation errors or the fault otherwise.
    pub error: Option<String>,
    /// Whether `Accept: application/json` was sent.
    pub accept_json: bool,
    /// The request's content type.
    pub content_type: Option<String>,
}

impl Submission {
    /// Parameters as a map (the last value wins when a name repeats).
    pub fn map(&self) -> BTreeMap<String, String> {
        self.params.iter().cloned().collect()
    }

    /// One parameter's value.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether it was answered 200 `QUEUED`.
    pub fn accepted(&self) -> bool {
        self.status == SubmissionStatus::Queued
    }

    /// Whether impact.com flagged it `CONV_DUPLICATE`.
    pub fn is_duplicate(&self) -> bool {
        self.error
            .as_deref()
            .is_some_and(|e| e.split_whitespace().any(|c| c == "CONV_DUPLICATE"))
    }
}

/// Which of impact.com's two documented validation-error shapes to answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub enum ErrorStyle {
    /// `{"Status":"ERROR","Message":"Validation Failed","Errors":[{"Field":..,"Message":..}]}`.
    #[default]
    Capitalized,
    /// `{"Status":"ERROR","errors":[{"field":..,"level":"ERROR","message":..}]}`.
    Lowercase,
}

#[derive(Debug)]
pub(crate) struct Settings {
    pub(crate) latency: Duration,
    pub(crate) rate_limit_per_hour: Option<u32>,
    pub(crate) error_style: ErrorStyle,
    pub(crate) xml_without_accept: bool,
    pub(crate) processing_delay: Duration,
    /// The rate-limit window (impact.com: an hour); shorter in tests.
    pub(crate) rate_window: Duration,
    /// Conversions do not count against the hourly limit.
    pub(crate) conversions_unlimited: bool,
    /// The smallest `PageSize` of the Actions list (impact.com: 2,000).
    pub(crate) actions_min_page_size: u32,
}

pub(crate) struct ImpactState {
    pub(crate) accounts: Mutex<Vec<ImpactAccount>>,
    pub(crate) log: Mutex<Vec<Submission>>,
    /// Batch id → arrival instant (for the Queued → Complete transition).
    pub(crate) batches: Mutex<HashMap<String, Instant>>,
    pub(crate) faults: Mutex<faults::FaultState>,
    pub(crate) settings: Mutex<Settings>,
    /// Per account: start of the hourly window and requests in it.
    pub(crate) hourly: Mutex<HashMap<String, (Instant, u32)>>,
    pub(crate) accepted: watch::Sender<usize>,
    /// `(account, event type, OrderId)` of accepted conversions.
    pub(crate) seen: Mutex<HashSet<(String, String, String)>>,
    /// OrderId → the `(ErrorType, ErrorReason)` its submissions complete with.
    pub(crate) outcomes: Mutex<HashMap<String, (String, String)>>,
    /// `APISubmissions` reads answered (any status).
    pub(crate) status_reads: Mutex<Vec<u16>>,
    /// Every read (submissions, actions, programs), in order.
    pub(crate) reads: Mutex<Vec<ApiRead>>,
    /// `EventTypeCode` → `ActionTrackerId` (see [`FakeImpact::define_event_type`]).
    pub(crate) event_types: Mutex<HashMap<String, u64>>,
    /// `(account, ActionTrackerId, OrderId)` of reversed actions.
    pub(crate) reversed: Mutex<HashSet<(String, String, String)>>,
}

/// Handle on the fake impact.com. Cheap to clone.
#[derive(Clone)]
pub struct FakeImpact {
    pub(crate) state: Arc<ImpactState>,
}

impl FakeImpact {
    pub(crate) fn new(cfg: &SandboxConfig) -> FakeImpact {
        let settings = Settings {
            latency: cfg.impact_latency,
            rate_limit_per_hour: None,
            error_style: ErrorStyle::default(),
            xml_without_accept: false,
            processing_delay: Duration::ZERO,
            rate_window: Duration::from_secs(3600),
            conversions_unlimited: false,
            actions_min_page_size: listing::MIN_PAGE_SIZE,
        };
        FakeImpact {
            state: Arc::new(ImpactState {
                accounts: Mutex::new(cfg.impact_accounts.clone()),
                log: Mutex::default(),
                batches: Mutex::default(),
                faults: Mutex::default(),
                settings: Mutex::new(settings),
                hourly: Mutex::default(),
                accepted: watch::channel(0).0,
                seen: Mutex::default(),
                outcomes: Mutex::default(),
                status_reads: Mutex::default(),
                reads: Mutex::default(),
                event_types: Mutex::default(),
                reversed: Mutex::default(),
            }),
        }
    }

    pub(crate) fn router(&self) -> Router {
        routes::routes()
            .merge(control::routes())
            .with_state(self.clone())
    }

    fn filtered(&self, keep: impl Fn(&Submission) -> bool) -> Vec<Submission> {
        lock(&self.state.log)
            .iter()
            .filter(|s| keep(s))
            .cloned()
            .collect()
    }

    /// Every request that reached the Conversions or Actions endpoints,
    /// rejected and faulted ones included, in arrival order.
    pub fn requests(&self) -> Vec<Submission> {
        self.filtered(|_| true)
    }

    /// Accepted (200 `QUEUED`) submissions of every kind, duplicates
    /// included (see [`Submission::is_duplicate`]).
    pub fn submissions(&self) -> Vec<Submission> {
        self.filtered(Submission::accepted)
    }

    /// Accepted conversions only.
    pub fn conversions(&self) -> Vec<Submission> {
        self.filtered(|s| s.accepted() && s.kind == SubmissionKind::Conversion)
    }

    /// How many conversions were accepted, duplicates included: a count,
    /// without copying the log (a benchmark polls it while the pipeline
    /// runs).
    pub fn accepted_conversions(&self) -> usize {
        lock(&self.state.log)
            .iter()
            .filter(|s| s.accepted() && s.kind == SubmissionKind::Conversion)
            .count()
    }

    /// Accepted submissions for one account.
    pub fn submissions_for(&self, account_sid: &str) -> Vec<Submission> {
        self.filtered(|s| s.accepted() && s.account_sid == account_sid)
    }

    /// Accepted submissions carrying this `OrderId`.
    pub fn by_order_id(&self, order_id: &str) -> Vec<Submission> {
        self.filtered(|s| s.accepted() && s.param("OrderId") == Some(order_id))
    }

    /// Accepted submissions received at or after `since`.
    pub fn since(&self, since: DateTime<Utc>) -> Vec<Submission> {
        self.filtered(|s| s.accepted() && s.received_at >= since)
    }

    /// Waits until at least `n` submissions were accepted; returns them, or
    /// an error naming what arrived after `timeout`.
    pub async fn wait_for_submissions(
        &self,
        n: usize,
        timeout: Duration,
    ) -> anyhow::Result<Vec<Submission>> {
        let mut rx = self.state.accepted.subscribe();
        match tokio::time::timeout(timeout, rx.wait_for(|c| *c >= n)).await {
            Ok(_) => Ok(self.submissions()),
            Err(_) => anyhow::bail!(
                "{} of {n} submissions accepted after {timeout:?}; requests: {:?}",
                self.submissions().len(),
                self.requests()
                    .iter()
                    .map(|r| (r.http_status, r.error.clone()))
                    .collect::<Vec<_>>()
            ),
        }
    }

    /// Forgets every recorded request (and duplicate history).
    pub fn clear(&self) {
        lock(&self.state.log).clear();
        lock(&self.state.batches).clear();
        lock(&self.state.seen).clear();
        lock(&self.state.reversed).clear();
        self.state.accepted.send_replace(0);
    }

    /// Declares the event type whose code is `code` to have tracker id
    /// `tracker_id`, so actions of conversions sent with that
    /// `EventTypeCode` are found by `ActionTrackerId` + `OrderId`.
    pub fn define_event_type(&self, code: &str, tracker_id: u64) {
        lock(&self.state.event_types).insert(code.to_owned(), tracker_id);
    }

    /// The declared event types: `EventTypeCode` → `ActionTrackerId`.
    pub fn event_types(&self) -> BTreeMap<String, u64> {
        lock(&self.state.event_types)
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    }

    /// Accepted reversals (`DELETE /Actions`).
    pub fn reversals(&self) -> Vec<Submission> {
        self.filtered(|s| s.accepted() && s.kind == SubmissionKind::ActionReversal)
    }

    /// Accepted modifications (`PUT /Actions`).
    pub fn modifications(&self) -> Vec<Submission> {
        self.filtered(|s| s.accepted() && s.kind == SubmissionKind::ActionUpdate)
    }

    /// The configured accounts.
    pub fn accounts(&self) -> Vec<ImpactAccount> {
        lock(&self.state.accounts).clone()
    }

    /// Adds (or replaces, by SID) an account.
    pub fn add_account(&self, account: ImpactAccount) {
        let mut accounts = lock(&self.state.accounts);
        accounts.retain(|a| a.account_sid != account.account_sid);
        accounts.push(account);
    }

    /// Faults for a share of requests, until cleared.
    pub fn set_faults(&self, plan: FaultPlan) {
        let mut f = lock(&self.state.faults);
        f.plan = plan;
        f.window = None;
    }

    /// Faults for a share of requests during `duration` from now.
    pub fn set_faults_for(&self, plan: FaultPlan, duration: Duration) {
        self.set_faults_window(plan, Duration::ZERO, duration);
    }

    /// Faults for a share of requests from `start_in` on, for `duration`.
    pub fn set_faults_window(&self, plan: FaultPlan, start_in: Duration, duration: Duration) {
        let mut f = lock(&self.state.faults);
        let from = Instant::now() + start_in;
        f.plan = plan;
        f.window = Some((from, from + duration));
    }

    /// The next requests meet exactly these faults, in order (before any plan).
    pub fn fail_next(&self, faults: impl IntoIterator<Item = Fault>) {
        lock(&self.state.faults).next.extend(faults);
    }

    /// No more faults.
    pub fn clear_faults(&self) {
        *lock(&self.state.faults) = Default::default();
    }

    /// The current fault plan.
    pub fn fault_plan(&self) -> FaultPlan {
        lock(&self.state.faults).plan.clone()
    }

    /// Delay added to every answer.
    pub fn set_latency(&self, latency: Duration) {
        lock(&self.state.settings).latency = latency;
    }

    /// Enforce a per-account hourly budget (impact.com's default is 1,000);
    /// `None` (the default) only reports it in headers.
    pub fn set_rate_limit(&self, per_hour: Option<u32>) {
        lock(&self.state.settings).rate_limit_per_hour = per_hour;
    }

    /// Which validation-error shape to answer.
    pub fn set_error_style(&self, style: ErrorStyle) {
        lock(&self.state.settings).error_style = style;
    }

    /// Answer XML (`ImpactRadiusResponse`) when `Accept: application/json`
    /// is missing, as the real API may.
    pub fn set_xml_without_accept(&self, xml: bool) {
        lock(&self.state.settings).xml_without_accept = xml;
    }

    /// Submissions of this OrderId complete with this error (e.g.
    /// `Contract Error` / `CONTRACT_NOT_FOUND`, or several codes separated
    /// by spaces, or an `ErrorType` with an empty reason) instead of
    /// succeeding; they become no action. A repeated OrderId adds
    /// `CONV_DUPLICATE` to the codes.
    pub fn set_outcome(&self, order_id: &str, error_type: &str, error_reason: &str) {
        lock(&self.state.outcomes).insert(
            order_id.to_owned(),
            (error_type.to_owned(), error_reason.to_owned()),
        );
    }

    /// The HTTP statuses of the `APISubmissions` reads answered, in order.
    pub fn status_reads(&self) -> Vec<u16> {
        lock(&self.state.status_reads).clone()
    }

    /// How long a submission stays `Queued` before it is `Complete`.
    pub fn set_processing_delay(&self, delay: Duration) {
        lock(&self.state.settings).processing_delay = delay;
    }
}
