//! Following submissions: impact.com answers QUEUED and decides later. A
//! background task of `worker run` learns each delivered conversion's
//! verdict and stores it (docs/src/outcomes.md), spending as little of the
//! account's hourly request budget as it can:
//!
//! - [`sweep`]: during the grace period after delivery, a conversion is
//!   looked for among its program's recently updated actions
//!   (`GET /Advertisers/{SID}/Actions`, up to 20,000 a page): one listing
//!   per program and interval decides every credited conversion at once.
//! - [`look`]: after it, a conversion without an action (rejected, or
//!   still being processed) has its own submission read
//!   (`GET /Advertisers/{SID}/APISubmissions/{BatchId}`) until `Complete`,
//!   backing off; given up (`unknown`) `give_up` after delivery.
//! - Several workers: a program's listing is leased to one worker per
//!   interval (`shared::db::outcome_sweeps::claim`), single submissions are
//!   claimed with `FOR UPDATE SKIP LOCKED` and a lease
//!   (`shared::db::outcomes::claim_due`).
//! - Rate limits: every impact.com answer (deliveries too) feeds the
//!   account's budget; the poller only spends what is above the share kept
//!   for deliveries, paced over the window, and pauses an account after a
//!   429 until its reset.

mod look;
mod sweep;

use std::time::Duration;

use shared::{config::Settings, db::outcome_sweeps};
use tokio_util::sync::CancellationToken;

use crate::Worker;

/// How the poller runs.
#[derive(Debug, Clone)]
pub struct PollConfig {
    /// Between passes (and between two listings of a program's actions).
    pub interval: Duration,
    /// Longest wait between two looks at one submission.
    pub max_backoff: Duration,
    /// Give up this long after delivery.
    pub give_up: Duration,
    /// Percent of an account's hourly budget left to deliveries.
    pub reserve_percent: u8,
    /// Submissions read one by one per pass.
    pub batch: i64,
    /// How long after delivery a conversion is decided from its program's
    /// listed actions before its own submission is read; zero: never
    /// listed, read one interval after delivery.
    pub grace: Duration,
}

impl PollConfig {
    /// From the `CONNECTOR_OUTCOMES_*` settings.
    pub fn from_settings(s: &Settings) -> Self {
        Self {
            interval: Duration::from_secs(s.outcomes_poll_interval_secs.max(1)),
            max_backoff: Duration::from_secs(
                s.outcomes_max_backoff_secs
                    .max(s.outcomes_poll_interval_secs.max(1)),
            ),
            give_up: Duration::from_secs(u64::from(s.outcomes_give_up_days) * 86_400),
            reserve_percent: s.outcomes_reserve_percent,
            batch: i64::from(s.outcomes_batch.max(1)),
            grace: Duration::from_secs(s.outcomes_grace_secs),
        }
    }

    /// Wait before the next look, after `checks` looks.
    fn backoff(&self, checks: i32) -> Duration {
        let factor = 2u32.saturating_pow(u32::try_from(checks.clamp(0, 20)).unwrap_or(20));
        self.interval.saturating_mul(factor).min(self.max_backoff)
    }

    /// From delivery to the first read of a submission of its own.
    fn first_look(&self) -> Duration {
        if self.grace.is_zero() {
            self.interval
        } else {
            self.grace
        }
    }
}

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PassReport {
    /// Submissions claimed to be read one by one.
    pub claimed: usize,
    /// Verdicts stored (from listings and from reads).
    pub decided: usize,
    /// Claimed, but not complete yet, or deferred (budget, outage).
    pub later: usize,
    /// Submissions read one by one (requests to impact.com).
    pub reads: usize,
    /// Pages of actions listed (requests to impact.com).
    pub listings: usize,
    /// Conversions found credited among the listed actions.
    pub credited: usize,
}

/// Runs passes every `interval` until `shutdown`.
pub fn spawn(
    w: Worker,
    cfg: PollConfig,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(cfg.interval) => {}
            }
            let mut report = PassReport::default();
            if let Err(e) = sweep::sweep(&w, &cfg, &mut report).await {
                tracing::warn!(error = %e, "listing actions failed; will try again");
            }
            // A full batch that read something may be followed by more due
            // rows: keep going (not when the budget deferred everything),
            // but stop for shutdown between batches.
            loop {
                let mut r = PassReport::default();
                match look::batch(&w, &cfg, &mut r).await {
                    Ok(())
                        if r.claimed as i64 >= cfg.batch
                            && r.reads > 0
                            && !shutdown.is_cancelled() => {}
                    Ok(()) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "following submissions failed; will try again");
                        break;
                    }
                }
            }
            record_lag(&w).await;
        }
    })
}

/// One pass: decide what the listed actions show credited, then read the
/// submissions due one by one, and report the lag.
pub async fn pass(w: &Worker, cfg: &PollConfig) -> Result<PassReport, sqlx::Error> {
    let mut report = PassReport::default();
    sweep::sweep(w, cfg, &mut report).await?;
    look::batch(w, cfg, &mut report).await?;
    record_lag(w).await;
    Ok(report)
}

/// `worker_submissions_undecided` and `worker_submissions_undecided_oldest_seconds`:
/// how many delivered conversions wait for a verdict, and for how long the
/// oldest has (aggregated over portals: no per-portal labels).
async fn record_lag(w: &Worker) {
    match outcome_sweeps::lag(&w.pool).await {
        Ok(l) => {
            metrics::gauge!("worker_submissions_undecided").set(l.undecided as f64);
            metrics::gauge!("worker_submissions_undecided_oldest_seconds").set(l.oldest_secs);
        }
        Err(e) => tracing::warn!(error = %e, "could not measure the submissions' lag"),
    }
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(grace: u64) -> PollConfig {
        PollConfig {
            interval: Duration::from_secs(60),
            max_backoff: Duration::from_secs(3600),
            give_up: Duration::from_secs(86_400),
            reserve_percent: 50,
            batch: 10,
            grace: Duration::from_secs(grace),
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let cfg = cfg(0);
        assert_eq!(cfg.backoff(0), Duration::from_secs(60));
        assert_eq!(cfg.backoff(3), Duration::from_secs(480));
        assert_eq!(cfg.backoff(30), Duration::from_secs(3600));
    }

    #[test]
    fn the_first_own_read_waits_for_the_grace_period() {
        assert_eq!(cfg(0).first_look(), Duration::from_secs(60));
        assert_eq!(cfg(1800).first_look(), Duration::from_secs(1800));
    }
}
