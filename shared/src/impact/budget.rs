//! What impact.com's rate-limit headers say about each account's hourly
//! budget (default 1,000 requests per hour per account), learned from every
//! answer (deliveries and submission polls alike), so that background work
//! (polling submissions) yields to deliveries.
//!
//! Deliveries are never held back here: they keep their own 429 handling
//! (retry ladder). The poller asks [`ImpactBudget::may_poll`] before each
//! call and stops for an account once its `Remaining` falls below the share
//! kept for deliveries, or after a 429 until the window resets. Between
//! those bounds it is paced: what is left to it (`Remaining` less the
//! reserve) is spread evenly over the time until `X-RateLimit-Reset`, so a
//! burst of work early in the hour cannot leave the rest of it without
//! reads.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

/// The rate-limit headers of one answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RateHeaders {
    /// `X-RateLimit-Limit`.
    pub limit: Option<u32>,
    /// `X-RateLimit-Remaining`.
    pub remaining: Option<u32>,
    /// `X-RateLimit-Reset`, as a delay from now (seconds or epoch accepted).
    pub reset: Option<Duration>,
}

impl RateHeaders {
    /// Reads the headers of `resp` (absent or malformed ones are `None`).
    pub fn of(headers: &reqwest::header::HeaderMap) -> Self {
        let num = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        Self {
            limit: num("x-ratelimit-limit").and_then(|v| u32::try_from(v).ok()),
            remaining: num("x-ratelimit-remaining").and_then(|v| u32::try_from(v).ok()),
            reset: num("x-ratelimit-reset").map(super::reset_delay),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Account {
    limit: u32,
    remaining: u32,
    /// When the window resets (what we know is stale after it).
    reset_at: Option<Instant>,
    /// A 429 was answered: no polling until then.
    paused_until: Option<Instant>,
    /// The poller's pace: requests it may make now, and when that was counted.
    tokens: Option<(f64, Instant)>,
}

/// impact.com's documented default hourly limit per account.
pub const DEFAULT_HOURLY_LIMIT: u32 = 1_000;

/// Per-account view of the hourly budget. Shared by a worker's clients.
#[derive(Debug, Default)]
pub struct ImpactBudget {
    accounts: Mutex<HashMap<String, Account>>,
}

impl ImpactBudget {
    /// Records an answer's headers (and a 429) for `account`.
    pub fn observe(&self, account: &str, status: u16, h: RateHeaders) {
        let now = Instant::now();
        let mut map = self.accounts.lock().unwrap_or_else(|e| e.into_inner());
        let a = map.entry(account.to_owned()).or_insert(Account {
            limit: DEFAULT_HOURLY_LIMIT,
            remaining: DEFAULT_HOURLY_LIMIT,
            reset_at: None,
            paused_until: None,
            tokens: None,
        });
        if let Some(l) = h.limit {
            a.limit = l;
        }
        if let Some(r) = h.remaining {
            a.remaining = r;
        }
        if let Some(d) = h.reset {
            a.reset_at = Some(now + d);
        }
        if status == 429 {
            a.remaining = 0;
            // No reset said: wait a minute before trying again.
            let wait = h.reset.unwrap_or(Duration::from_secs(60));
            a.paused_until = Some(now + wait.max(Duration::from_secs(1)));
        }
    }

    /// Whether the poller may spend one request of `account`'s budget,
    /// keeping `reserve_percent` of the limit for deliveries, at a pace that
    /// spreads the rest over the time until the window resets and lets it
    /// spend at most `burst`'s worth at once (one pass of the poller). `Err`
    /// holds how long to wait before asking again.
    pub fn may_poll(
        &self,
        account: &str,
        reserve_percent: u8,
        burst: Duration,
    ) -> Result<(), Duration> {
        let now = Instant::now();
        let mut map = self.accounts.lock().unwrap_or_else(|e| e.into_inner());
        let Some(a) = map.get_mut(account) else {
            return Ok(());
        };
        if let Some(until) = a.paused_until {
            if now < until {
                return Err(until - now);
            }
            a.paused_until = None;
        }
        if a.reset_at.is_some_and(|t| now >= t) {
            // A new window: the old count says nothing any more.
            a.remaining = a.limit;
            a.reset_at = None;
        }
        let reserve = u64::from(a.limit) * u64::from(reserve_percent.min(100)) / 100;
        let until_reset = a
            .reset_at
            .map(|t| t.saturating_duration_since(now))
            .unwrap_or(Duration::from_secs(3600));
        if u64::from(a.remaining) <= reserve {
            return Err(until_reset.max(Duration::from_secs(1)));
        }
        // What is left to the poller, spread until the reset.
        let left = (u64::from(a.remaining) - reserve) as f64;
        let rate = left / until_reset.as_secs_f64().max(1.0);
        let cap = (rate * burst.as_secs_f64()).max(1.0);
        let (tokens, at) = a.tokens.unwrap_or((cap, now));
        let tokens = (tokens + rate * now.duration_since(at).as_secs_f64()).min(cap);
        if tokens < 1.0 {
            a.tokens = Some((tokens, now));
            let wait = Duration::from_secs_f64((1.0 - tokens) / rate);
            return Err(wait.max(Duration::from_millis(10)));
        }
        a.tokens = Some((tokens - 1.0, now));
        // Counted now, so a pass does not overspend before the next answer.
        a.remaining = a.remaining.saturating_sub(1);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polling_stops_at_the_reserve_and_after_a_429() {
        let b = ImpactBudget::default();
        let burst = Duration::from_secs(60);
        assert!(b.may_poll("IR1", 50, burst).is_ok(), "unknown account: go");
        let h = RateHeaders {
            limit: Some(100),
            remaining: Some(52),
            reset: Some(Duration::from_secs(600)),
        };
        b.observe("IR1", 200, h);
        // Two requests left above the reserve, 600 s to go: the pace allows
        // one at once, the other about 300 s later.
        assert!(b.may_poll("IR1", 50, burst).is_ok());
        let wait = b.may_poll("IR1", 50, burst).expect_err("paced");
        assert!(wait > Duration::from_secs(200), "{wait:?}");
        b.observe("IR2", 429, RateHeaders::default());
        assert!(b.may_poll("IR2", 0, burst).is_err(), "paused after a 429");
        assert!(b.may_poll("IR3", 0, burst).is_ok());
    }

    #[test]
    fn a_new_window_restores_the_budget() {
        let b = ImpactBudget::default();
        let h = RateHeaders {
            limit: Some(10),
            remaining: Some(0),
            reset: Some(Duration::ZERO),
        };
        b.observe("IR1", 200, h);
        assert!(b.may_poll("IR1", 50, Duration::from_secs(60)).is_ok());
    }

    #[test]
    fn the_reserve_is_never_spent() {
        let b = ImpactBudget::default();
        let h = RateHeaders {
            limit: Some(100),
            remaining: Some(53),
            reset: Some(Duration::from_secs(1)),
        };
        b.observe("IR1", 200, h);
        // A long burst allows all three above the reserve at once, no more.
        let burst = Duration::from_secs(3600);
        for _ in 0..3 {
            assert!(b.may_poll("IR1", 50, burst).is_ok());
        }
        let wait = b.may_poll("IR1", 50, burst).expect_err("reserve reached");
        assert!(wait <= Duration::from_secs(1), "until the reset: {wait:?}");
    }

    #[test]
    fn the_pace_spreads_the_share_over_the_window() {
        let b = ImpactBudget::default();
        let h = RateHeaders {
            limit: Some(1000),
            remaining: Some(1000),
            reset: Some(Duration::from_secs(3600)),
        };
        b.observe("IR1", 200, h);
        // 500 over an hour: a minute's pass may spend about 8.
        let minute = Duration::from_secs(60);
        let mut spent = 0;
        while b.may_poll("IR1", 50, minute).is_ok() {
            spent += 1;
        }
        assert_eq!(spent, 8);
    }
}
