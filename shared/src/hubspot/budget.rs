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
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use crate::db::rate_windows;

use super::window::{Window, share};

/// A pause longer than this (HubSpot's `DAILY` policy) is not waited out in
/// process: the call fails at once with the time left, and the message
/// takes the retry ladder.
pub const LONGEST_WAIT: Duration = Duration::from_secs(30);

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
    /// The endpoint never sends rate-limit headers (CRM search, which has a
    /// limit of its own): its answer says nothing about the window.
    pub headerless: bool,
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
    crate::db::rate_windows::account_key(token)
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
    let window = rate_windows::Window {
        account,
        capacity: count(capacity),
        interval_ms: millis(interval),
    };
    let r = rate_windows::reserve(pool, &window, millis(LONGEST_WAIT)).await?;
    Ok(match r.at {
        Some(at) => Reserved::At {
            wait: (at - r.now).to_std().unwrap_or_default(),
            at,
        },
        None => Reserved::Paused(
            r.paused_until
                .and_then(|p| (p - r.now).to_std().ok())
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
                    let account = key(token);
                    let window = rate_windows::Window {
                        account: &account,
                        capacity: count(capacity),
                        interval_ms: millis(interval),
                    };
                    let answer = rate_windows::Answer {
                        reserved,
                        max: to_i32(seen.max),
                        remaining: to_i32(seen.remaining),
                        limited: seen.limited,
                        pause_ms: limited.map(|(_, d)| millis(d)),
                    };
                    let booked = rate_windows::answered(pool, &window, &answer).await;
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
        if seen.max.is_some() || seen.remaining.is_some() {
            w.limited = true;
            w.unlimited = false;
        } else if seen.success && !seen.headerless && !w.limited {
            // Only an account never seen limited is taken for unlimited: an
            // answer without headers leaves a learned window as it was.
            w.unlimited = true;
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
#[path = "budget_tests.rs"]
mod tests;
