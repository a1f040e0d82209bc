//! Fault injection on the impact.com side: a share of requests (optionally
//! only inside a time window) answered 429 or 5xx, slowed down, or dropped;
//! or an exact list of the next requests' faults.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use rand::Rng;
use serde::{Deserialize, Serialize};

/// Shares (0..=1) of requests that meet each fault. They add up: with
/// `rate_limited: 0.1, server_error: 0.1`, one request in five fails.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FaultPlan {
    /// Answered 429 with `X-RateLimit-*` headers.
    #[serde(default)]
    pub rate_limited: f64,
    /// Answered 503 (or the status in `server_error_status`).
    #[serde(default)]
    pub server_error: f64,
    /// The 5xx status used; 503 when 0.
    #[serde(default)]
    pub server_error_status: u16,
    /// Connection closed without an answer, before the request is processed.
    #[serde(default)]
    pub dropped: f64,
    /// Processed (recorded, queued) and then the connection is closed
    /// without an answer: a retry becomes a `CONV_DUPLICATE`.
    #[serde(default)]
    pub dropped_after_processing: f64,
    /// Answered normally but only after `slow_delay`.
    #[serde(default)]
    pub slow: f64,
    /// How slow a slow answer is.
    #[serde(default, with = "crate::millis")]
    pub slow_delay: Duration,
}

/// One fault, for [`super::FakeImpact::fail_next`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Fault {
    /// 429.
    RateLimited,
    /// A 5xx status.
    ServerError(u16),
    /// Close the connection before processing.
    Drop,
    /// Process, then close the connection without answering.
    DropAfterProcessing,
    /// Answer normally after this many milliseconds.
    SlowMs(u64),
}

#[derive(Debug, Default)]
pub(crate) struct FaultState {
    pub(crate) plan: FaultPlan,
    pub(crate) window: Option<(Instant, Instant)>,
    pub(crate) next: VecDeque<Fault>,
}

impl FaultState {
    /// The fault this request meets, if any.
    pub(crate) fn decide(&mut self) -> Option<Fault> {
        if let Some(f) = self.next.pop_front() {
            return Some(f);
        }
        let now = Instant::now();
        if self
            .window
            .is_some_and(|(from, until)| now < from || now >= until)
        {
            return None;
        }
        let p = &self.plan;
        let r: f64 = rand::rng().random();
        let mut edge = 0.0;
        let mut hit = |share: f64| {
            edge += share.max(0.0);
            r < edge
        };
        if hit(p.rate_limited) {
            Some(Fault::RateLimited)
        } else if hit(p.server_error) {
            Some(Fault::ServerError(if p.server_error_status >= 500 {
                p.server_error_status
            } else {
                503
            }))
        } else if hit(p.dropped) {
            Some(Fault::Drop)
        } else if hit(p.dropped_after_processing) {
            Some(Fault::DropAfterProcessing)
        } else if hit(p.slow) {
            Some(Fault::SlowMs(p.slow_delay.as_millis() as u64))
        } else {
            None
        }
    }
}
