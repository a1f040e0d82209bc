//! A per-account request budget that follows HubSpot's rate-limit headers,
//! so a busy portal slows down instead of collecting 429s (which also count
//! against the marketplace's 5 % error rule).
//!
//! HubSpot's burst limit is a rolling window (e.g. 100 requests in any
//! 10 s): each account (keyed by its access token) keeps the send times of
//! its last requests, and a request waits until it fits the window. The
//! window starts at the documented 100 / 10 s, learns the real limit from
//! `X-HubSpot-RateLimit-Max` / `-Interval-Milliseconds`, and takes
//! `X-HubSpot-RateLimit-Remaining` into account (other workers share the
//! budget).

use std::{
    collections::{HashMap, VecDeque},
    sync::Mutex,
    time::{Duration, Instant},
};

use sha2::{Digest, Sha256};

/// Share of the advertised limit we use (room for the account's other apps).
const SHARE: f64 = 0.9;

#[derive(Debug)]
struct Window {
    capacity: usize,
    interval: Duration,
    /// Send times of the requests in the current window, oldest first
    /// (may lie in the future: reserved slots).
    sent: VecDeque<Instant>,
}

impl Window {
    fn new() -> Self {
        Self {
            capacity: share(100),
            interval: Duration::from_secs(10),
            sent: VecDeque::new(),
        }
    }

    fn expire(&mut self, now: Instant) {
        while self
            .sent
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= self.interval)
        {
            self.sent.pop_front();
        }
    }

    /// Takes one request slot; returns how long to wait before sending.
    fn reserve(&mut self, now: Instant) -> Duration {
        self.expire(now);
        let at = if self.sent.len() < self.capacity {
            now.max(self.sent.back().copied().unwrap_or(now))
        } else {
            let idx = self.sent.len() - self.capacity;
            (self.sent[idx] + self.interval).max(self.sent.back().copied().unwrap_or(now))
        };
        self.sent.push_back(at);
        at.saturating_duration_since(now)
    }

    /// Marks `n` more slots of the current window as used (by others).
    fn occupy(&mut self, now: Instant, n: usize) {
        let at = self.sent.partition_point(|t| *t <= now);
        for _ in 0..n {
            self.sent.insert(at, now);
        }
    }
}

fn share(max: u64) -> usize {
    ((max as f64 * SHARE).floor() as usize).max(1)
}

/// What a response said about the budget.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Observed {
    /// `X-HubSpot-RateLimit-Max`.
    pub max: Option<u64>,
    /// `X-HubSpot-RateLimit-Interval-Milliseconds`.
    pub interval_ms: Option<u64>,
    /// `X-HubSpot-RateLimit-Remaining`.
    pub remaining: Option<u64>,
    /// The answer was a 429 for the rolling window.
    pub limited: bool,
}

/// Buckets by account (keyed by a hash of the access token).
#[derive(Debug, Default)]
pub struct RateBudget {
    buckets: Mutex<HashMap<[u8; 16], Window>>,
}

fn key(token: &str) -> [u8; 16] {
    let digest = Sha256::digest(token.as_bytes());
    let mut k = [0u8; 16];
    k.copy_from_slice(&digest[..16]);
    k
}

impl RateBudget {
    /// Waits until a request for this account fits the budget.
    pub async fn acquire(&self, token: &str) {
        let wait = {
            let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
            buckets
                .entry(key(token))
                .or_insert_with(Window::new)
                .reserve(Instant::now())
        };
        if !wait.is_zero() {
            metrics::counter!("hubspot_budget_waits_total").increment(1);
            tokio::time::sleep(wait).await;
        }
    }

    /// Learns from a response's headers.
    pub fn observe(&self, token: &str, seen: Observed) {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let w = buckets.entry(key(token)).or_insert_with(Window::new);
        let now = Instant::now();
        w.expire(now);
        if let (Some(max), Some(ms)) = (seen.max, seen.interval_ms)
            && max > 0
            && ms > 0
        {
            w.capacity = share(max);
            w.interval = Duration::from_millis(ms);
        }
        let used_here = w.sent.iter().filter(|t| **t <= now).count();
        if let Some(left) = seen.remaining {
            // Slots the server counts as used that we do not know of.
            let max = seen.max.unwrap_or(w.capacity as u64) as usize;
            let others = max.saturating_sub(left as usize).saturating_sub(used_here);
            w.occupy(now, others.min(w.capacity));
        }
        if seen.limited {
            let free = w.capacity.saturating_sub(w.sent.len());
            w.occupy(now, free);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_more_than_the_limit_in_any_window() {
        let mut w = Window::new();
        let now = Instant::now();
        let times: Vec<Instant> = (0..200).map(|_| now + w.reserve(now)).collect();
        for (i, t) in times.iter().enumerate() {
            let in_window = times[..i]
                .iter()
                .filter(|s| t.saturating_duration_since(**s) < w.interval)
                .count();
            assert!(in_window < w.capacity, "request {i}: {in_window} before it");
        }
        assert_eq!(times[89], now, "the first 90 go at once");
        assert_eq!(times[90], now + Duration::from_secs(10));
    }

    #[test]
    fn headers_and_429s_shrink_what_is_left() {
        let budget = RateBudget::default();
        budget.observe(
            "t",
            Observed {
                max: Some(190),
                interval_ms: Some(10_000),
                remaining: Some(3),
                limited: false,
            },
        );
        let mut buckets = budget.buckets.lock().expect("not poisoned");
        let w = buckets.get_mut(&key("t")).expect("created");
        assert_eq!(w.capacity, 171);
        assert_eq!(w.sent.len(), 171, "the server's count wins");
        assert!(w.reserve(Instant::now()) > Duration::ZERO);
    }
}
