//! A per-account request budget that follows HubSpot's rate-limit headers,
//! so a busy portal slows down instead of collecting 429s (which also count
//! against the marketplace's 5 % error rule).
//!
//! HubSpot's burst limit is a rolling window (e.g. 100 requests in any
//! 10 s): each account (keyed by its access token) keeps the send times of
//! its last requests, and a request waits until it fits the window. The
//! window starts at the documented 100 / 10 s, learns the real limit from
//! `X-HubSpot-RateLimit-Max` / `-Interval-Milliseconds`, and takes
//! `X-HubSpot-RateLimit-Remaining` into account (other apps of the account
//! share the limit).
//!
//! Every worker, and ingest's website, calls HubSpot for the same accounts:
//! with a database ([`RateBudget::shared`]) the window lives in PostgreSQL
//! (`hubspot_rate_windows`, migration 000007), so two workers split one
//! account's limit instead of each spending all of it. Should the database
//! not answer, a request falls back to this process's own window.

use std::{
    collections::{HashMap, VecDeque},
    sync::Mutex,
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use sqlx::PgPool;

/// Share of the advertised limit we use: a little room for clock and
/// network jitter between our send times and HubSpot's arrival times (other
/// apps of the account show up in `X-HubSpot-RateLimit-Remaining`).
const SHARE: f64 = 0.95;

/// A pause longer than this (HubSpot's `DAILY` policy) is not waited out in
/// process: the call fails at once with the time left, and the message
/// takes the retry ladder.
pub const LONGEST_WAIT: Duration = Duration::from_secs(30);

#[derive(Debug)]
struct Window {
    capacity: usize,
    interval: Duration,
    /// Send times of the requests in the current window, oldest first
    /// (may lie in the future: reserved slots).
    sent: VecDeque<Instant>,
    /// No request before then (a `DAILY` 429, or a `Retry-After`).
    paused_until: Option<Instant>,
    /// The last successful answer carried no rate-limit headers: the API is
    /// not limiting this account (a test double, or a plan without burst
    /// limits), so requests are not held back until headers appear again.
    unlimited: bool,
}

impl Window {
    fn new() -> Self {
        Self {
            capacity: share(100),
            interval: Duration::from_secs(10),
            sent: VecDeque::new(),
            paused_until: None,
            unlimited: false,
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
    /// The answer was a 2xx.
    pub success: bool,
}

/// A request the budget will not let through now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paused {
    /// Time left until the account may be called again.
    pub retry_after: Duration,
}

/// A request slot taken by [`RateBudget::acquire`], handed back with the
/// answer to [`RateBudget::answered`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot(SlotAt);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SlotAt {
    /// In this process's window.
    Local(Instant),
    /// In the shared window, at the database's time.
    Shared(DateTime<Utc>),
}

impl Slot {
    /// When the shared window scheduled the request (database time); `None`
    /// for a slot of this process's own window.
    pub fn shared_at(&self) -> Option<DateTime<Utc>> {
        match self.0 {
            SlotAt::Shared(at) => Some(at),
            SlotAt::Local(_) => None,
        }
    }
}

/// Buckets by account (keyed by a hash of the access token).
#[derive(Debug, Default)]
pub struct RateBudget {
    buckets: Mutex<HashMap<[u8; 16], Window>>,
    /// Where the shared windows live (`None`: this process only).
    pool: Option<PgPool>,
    /// The database failed a reservation: until then, requests use this
    /// process's window without asking it (no timeout per request).
    shared_down_until: Mutex<Option<Instant>>,
}

/// How long the shared window is not asked after it failed.
const SHARED_BACKOFF: Duration = Duration::from_secs(5);

fn key(token: &str) -> [u8; 16] {
    let digest = Sha256::digest(token.as_bytes());
    let mut k = [0u8; 16];
    k.copy_from_slice(&digest[..16]);
    k
}

/// What the shared window answered to a reservation.
enum Reserved {
    /// Send after `wait`; the slot is at `at`.
    At { wait: Duration, at: DateTime<Utc> },
    /// The account is paused for longer than we wait.
    Paused(Duration),
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn count(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

async fn shared_reserve(
    pool: &PgPool,
    account: &[u8; 16],
    capacity: usize,
    interval: Duration,
) -> Result<Reserved, sqlx::Error> {
    let (at, now, paused): (Option<DateTime<Utc>>, DateTime<Utc>, Option<DateTime<Utc>>) =
        sqlx::query_as(
            "SELECT at, now, paused_until FROM hubspot_rate_reserve(\
             $1, $2, $3 * interval '1 millisecond', $4 * interval '1 millisecond')",
        )
        .bind(&account[..])
        .bind(count(capacity))
        .bind(millis(interval))
        .bind(millis(LONGEST_WAIT))
        .fetch_one(pool)
        .await?;
    Ok(match at {
        Some(at) => Reserved::At {
            wait: (at - now).to_std().unwrap_or_default(),
            at,
        },
        None => Reserved::Paused(
            paused
                .and_then(|p| (p - now).to_std().ok())
                .unwrap_or(LONGEST_WAIT),
        ),
    })
}

impl RateBudget {
    /// A budget whose windows live in the database, shared with every
    /// process using the same database.
    pub fn shared(pool: PgPool) -> Self {
        Self {
            buckets: Mutex::default(),
            pool: Some(pool),
            shared_down_until: Mutex::default(),
        }
    }

    /// Waits until a request for this account fits the budget; `Err` when
    /// the account is paused for longer than [`LONGEST_WAIT`] (its daily
    /// limit is spent), without taking a slot.
    pub async fn acquire(&self, token: &str) -> Result<Slot, Paused> {
        let account = key(token);
        let (capacity, interval, unlimited) = {
            let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            let w = buckets.entry(account).or_insert_with(Window::new);
            if let Some(until) = w.paused_until
                && until.saturating_duration_since(now) > LONGEST_WAIT
            {
                return Err(Paused {
                    retry_after: until.saturating_duration_since(now),
                });
            }
            (w.capacity, w.interval, w.unlimited)
        };
        // An account HubSpot does not limit needs no shared bookkeeping.
        if let (Some(pool), false, false) = (&self.pool, unlimited, self.shared_down()) {
            match shared_reserve(pool, &account, capacity, interval).await {
                Ok(Reserved::At { wait, at }) => {
                    Self::wait(wait).await;
                    return Ok(Slot(SlotAt::Shared(at)));
                }
                Ok(Reserved::Paused(retry_after)) => return Err(Paused { retry_after }),
                Err(e) => {
                    metrics::counter!("hubspot_budget_shared_errors_total").increment(1);
                    tracing::warn!(error = %e, "shared HubSpot rate budget unavailable; using this process's own window");
                    *self
                        .shared_down_until
                        .lock()
                        .unwrap_or_else(|e| e.into_inner()) = Some(Instant::now() + SHARED_BACKOFF);
                }
            }
        }
        let (now, wait) = {
            let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            let w = buckets.entry(account).or_insert_with(Window::new);
            (now, w.reserve(now))
        };
        Self::wait(wait).await;
        Ok(Slot(SlotAt::Local(now + wait)))
    }

    /// Whether the shared window failed lately.
    fn shared_down(&self) -> bool {
        self.shared_down_until
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some_and(|until| Instant::now() < until)
    }

    async fn wait(wait: Duration) {
        if !wait.is_zero() {
            metrics::counter!("hubspot_budget_waits_total").increment(1);
            metrics::histogram!("hubspot_budget_wait_seconds").record(wait.as_secs_f64());
            tokio::time::sleep(wait).await;
        }
    }

    /// Books the answer to a request sent in `slot`: the slot moves to now
    /// (see [`RateBudget::settle`]), the rate-limit headers are learned
    /// ([`RateBudget::observe`]), and a 429's policy followed (`limited`:
    /// the policy name and the wait it asked for).
    pub async fn answered(
        &self,
        token: &str,
        slot: Slot,
        seen: Observed,
        limited: Option<(&str, Duration)>,
    ) {
        match slot.0 {
            SlotAt::Local(reserved) => self.settle(token, reserved, Instant::now()),
            SlotAt::Shared(reserved) => {
                if let Some(pool) = &self.pool {
                    let (capacity, interval) = self.window_size(token);
                    let to_i32 = |v: Option<u64>| v.map(|v| i32::try_from(v).unwrap_or(i32::MAX));
                    let pause = limited.map(|(_, d)| millis(d));
                    let booked = sqlx::query(
                        "SELECT hubspot_rate_answered($1, $2, $3, \
                         $4 * interval '1 millisecond', $5, $6, $7, $8 * interval '1 millisecond')",
                    )
                    .bind(&key(token)[..])
                    .bind(reserved)
                    .bind(count(capacity))
                    .bind(millis(interval))
                    .bind(to_i32(seen.max))
                    .bind(to_i32(seen.remaining))
                    .bind(seen.limited)
                    .bind(pause)
                    .execute(pool)
                    .await;
                    if let Err(e) = booked {
                        metrics::counter!("hubspot_budget_shared_errors_total").increment(1);
                        tracing::warn!(error = %e, "could not book a HubSpot answer in the shared rate budget");
                    }
                }
            }
        }
        self.observe(token, seen);
        if let Some((policy, retry_after)) = limited {
            self.rate_limited(token, policy, retry_after);
        }
    }

    /// The account's window as learned so far (capacity, interval).
    fn window_size(&self, token: &str) -> (usize, Duration) {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let w = buckets.entry(key(token)).or_insert_with(Window::new);
        (w.capacity, w.interval)
    }

    /// Moves a slot taken by [`RateBudget::acquire`] (`reserved`) to `answered`,
    /// the time its answer came: HubSpot counted the request somewhere in
    /// between, and a busy process may send well after the reserved time,
    /// so the later bound is the safe one for the rolling window.
    pub fn settle(&self, token: &str, reserved: Instant, answered: Instant) {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let Some(w) = buckets.get_mut(&key(token)) else {
            return;
        };
        if let Some(i) = w.sent.iter().position(|t| *t == reserved) {
            w.sent.remove(i);
            let at = w.sent.partition_point(|t| *t <= answered);
            w.sent.insert(at, answered);
        }
    }

    /// Follows a 429's policy: `DAILY` pauses the account for `retry_after`
    /// (until its midnight); `TEN_SECONDLY_ROLLING` (and unknown policies)
    /// fill the current window and wait at least `retry_after`.
    pub fn rate_limited(&self, token: &str, policy: &str, retry_after: Duration) {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let w = buckets.entry(key(token)).or_insert_with(Window::new);
        let now = Instant::now();
        w.expire(now);
        let free = w.capacity.saturating_sub(w.sent.len());
        w.occupy(now, free);
        let until = now + retry_after;
        if policy == "DAILY" || retry_after > Duration::ZERO {
            w.paused_until = Some(w.paused_until.map_or(until, |p| p.max(until)));
        }
        metrics::counter!("hubspot_rate_limited_total", "policy" => policy.to_owned()).increment(1);
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
        if seen.success {
            w.unlimited = seen.max.is_none() && seen.remaining.is_none();
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
        assert_eq!(times[94], now, "the first 95 go at once");
        assert_eq!(times[95], now + Duration::from_secs(10));
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
                success: true,
            },
        );
        let mut buckets = budget.buckets.lock().expect("not poisoned");
        let w = buckets.get_mut(&key("t")).expect("created");
        assert_eq!(w.capacity, 180);
        assert_eq!(w.sent.len(), 180, "the server's count wins");
        assert!(w.reserve(Instant::now()) > Duration::ZERO);
    }

    #[tokio::test]
    async fn a_daily_429_pauses_the_account_and_a_rolling_one_waits_the_window() {
        let budget = RateBudget::default();
        budget.rate_limited("daily", "DAILY", Duration::from_secs(3600));
        let paused = budget.acquire("daily").await.expect_err("paused");
        assert!(budget.acquire("other").await.is_ok());
        assert!(paused.retry_after > Duration::from_secs(3500));
        // Another account is not affected.
        assert!(budget.acquire("other").await.is_ok());
        budget.rate_limited("rolling", "TEN_SECONDLY_ROLLING", Duration::from_secs(1));
        let mut buckets = budget.buckets.lock().expect("not poisoned");
        let w = buckets.get_mut(&key("rolling")).expect("created");
        assert!(w.reserve(Instant::now()) >= Duration::from_millis(900));
    }

    #[test]
    fn answers_without_rate_limit_headers_lift_the_window() {
        let budget = RateBudget::default();
        let no_headers = Observed {
            success: true,
            ..Observed::default()
        };
        budget.observe("t", no_headers);
        let mut buckets = budget.buckets.lock().expect("not poisoned");
        let w = buckets.get_mut(&key("t")).expect("created");
        let now = Instant::now();
        assert!((0..500).all(|_| w.reserve(now).is_zero()));
        drop(buckets);
        budget.observe(
            "t",
            Observed {
                max: Some(110),
                interval_ms: Some(10_000),
                remaining: Some(100),
                limited: false,
                success: true,
            },
        );
        let mut buckets = budget.buckets.lock().expect("not poisoned");
        let w = buckets.get_mut(&key("t")).expect("created");
        assert!(!w.unlimited, "headers are back");
    }
}
