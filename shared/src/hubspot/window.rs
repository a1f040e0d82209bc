//! The rolling request window of one HubSpot account, as this process
//! keeps it: the send times of its last requests, so a request waits until
//! it fits.

use std::{
    collections::VecDeque,
    time::{Duration, Instant},
};

/// Share of the advertised limit we use: a little room for clock and
/// network jitter between our send times and HubSpot's arrival times (other
/// apps of the account show up in `X-HubSpot-RateLimit-Remaining`).
const SHARE: f64 = 0.95;

/// One account's rolling window of send times.
#[derive(Debug)]
pub(super) struct Window {
    /// Requests allowed per interval (our share of the advertised limit).
    pub(super) capacity: usize,
    /// The window's length.
    pub(super) interval: Duration,
    /// Send times of the requests in the current window, oldest first
    /// (may lie in the future: reserved slots).
    pub(super) sent: VecDeque<Instant>,
    /// No request before then (a `DAILY` 429, or a `Retry-After`).
    pub(super) paused_until: Option<Instant>,
    /// Successful answers carried no rate-limit headers and none ever did:
    /// the API is not limiting this account (a test double), so requests
    /// are not held back until headers appear.
    pub(super) unlimited: bool,
    /// An answer carried rate-limit headers: the account is limited, and an
    /// answer without them (search, a proxy) changes nothing.
    pub(super) limited: bool,
}

impl Window {
    /// HubSpot's documented default: 100 requests in any 10 s.
    pub(super) fn new() -> Self {
        Self {
            capacity: share(100),
            interval: Duration::from_secs(10),
            sent: VecDeque::new(),
            paused_until: None,
            unlimited: false,
            limited: false,
        }
    }

    /// Forgets the send times that left the window.
    pub(super) fn expire(&mut self, now: Instant) {
        while self
            .sent
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= self.interval)
        {
            self.sent.pop_front();
        }
    }

    /// Takes one request slot; returns how long to wait before sending.
    pub(super) fn reserve(&mut self, now: Instant) -> Duration {
        self.expire(now);
        let not_before = self.paused_until.filter(|p| *p > now).unwrap_or(now);
        if self.unlimited {
            self.sent
                .push_back(not_before.max(self.sent.back().copied().unwrap_or(now)));
            return not_before.saturating_duration_since(now);
        }
        let at = if self.sent.len() < self.capacity {
            now.max(self.sent.back().copied().unwrap_or(now))
        } else {
            let idx = self.sent.len() - self.capacity;
            (self.sent[idx] + self.interval).max(self.sent.back().copied().unwrap_or(now))
        };
        let at = at.max(not_before);
        self.sent.push_back(at);
        at.saturating_duration_since(now)
    }

    /// Marks `n` more slots of the current window as used (by others).
    pub(super) fn occupy(&mut self, now: Instant, n: usize) {
        let at = self.sent.partition_point(|t| *t <= now);
        for _ in 0..n {
            self.sent.insert(at, now);
        }
    }
}

/// Our share of an advertised limit of `max` requests.
pub(super) fn share(max: u64) -> usize {
    ((max as f64 * SHARE).floor() as usize).max(1)
}
