//! Following submissions: impact.com answers QUEUED and decides later. A
//! background task of `worker run` reads each delivered conversion's
//! QueuedUri (`GET /Advertisers/{SID}/APISubmissions/{BatchId}`) until the
//! submission is `Complete`, and stores the verdict (README "Submission
//! outcomes").
//!
//! - Several workers: rows are claimed with `FOR UPDATE SKIP LOCKED` and a
//!   lease (`shared::db::outcomes::claim_due`).
//! - Backoff per submission: the first look `interval` after delivery, then
//!   doubling up to `max_backoff`; given up (`unknown`) `give_up` after delivery.
//! - Rate limits: every impact.com answer (deliveries too) feeds the
//!   account's budget; the poller only spends what is above the share kept
//!   for deliveries, and pauses an account after a 429 until its reset.

use std::time::Duration;

use chrono::Utc;
use domain::events::PortalId;
use shared::{
    config::Settings,
    db::outcomes::{self, DueSubmission, Verdict},
    impact::ImpactError,
};
use tokio_util::sync::CancellationToken;

use crate::Worker;

/// impact.com's reason for an async duplicate.
pub const CONV_DUPLICATE: &str = "CONV_DUPLICATE";

/// Reason codes used as metric labels; anything else is `other`.
const KNOWN_REASONS: &[&str] = &[
    "CONV_DUPLICATE",
    "CAMPAIGN_NOT_FOUND",
    "ACTIONTRACKER_NOT_FOUND",
    "OID_MISSING",
    "MALFORMED",
    "CONTRACT_NOT_FOUND",
];

/// How the poller runs.
#[derive(Debug, Clone)]
pub struct PollConfig {
    /// Between passes, and the first look after delivery.
    pub interval: Duration,
    /// Longest wait between two looks at one submission.
    pub max_backoff: Duration,
    /// Give up this long after delivery.
    pub give_up: Duration,
    /// Percent of an account's hourly budget left to deliveries.
    pub reserve_percent: u8,
    /// Submissions per pass.
    pub batch: i64,
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
        }
    }

    /// Wait before the next look, after `checks` looks.
    fn backoff(&self, checks: i32) -> Duration {
        let factor = 2u32.saturating_pow(u32::try_from(checks.clamp(0, 20)).unwrap_or(20));
        self.interval.saturating_mul(factor).min(self.max_backoff)
    }
}

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PassReport {
    /// Submissions claimed.
    pub claimed: usize,
    /// Verdicts stored.
    pub decided: usize,
    /// Not complete yet, or deferred (budget, outage).
    pub later: usize,
    /// Requests made to impact.com.
    pub reads: usize,
}

/// The bounded metric label of a reason.
pub fn reason_label(reason: Option<&str>) -> &'static str {
    match reason {
        None => "none",
        Some(r) => KNOWN_REASONS
            .iter()
            .find(|k| k.eq_ignore_ascii_case(r))
            .copied()
            .unwrap_or("other"),
    }
}

/// The verdict for a completed submission: an ErrorReason makes it
/// `rejected`, except `CONV_DUPLICATE` of a conversion we sent more than
/// once (a resend after a crash, or a forced replay): impact.com has the
/// earlier submission of the same OrderId, so nothing was lost.
pub fn verdict_of(reason: Option<&str>, attempts: i32) -> &'static str {
    match reason {
        None => "complete",
        Some(r) if r.eq_ignore_ascii_case(CONV_DUPLICATE) && attempts > 1 => "duplicate_resend",
        Some(_) => "rejected",
    }
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
            // A full pass that read something may be followed by more due
            // rows: keep going (not when the budget deferred everything),
            // but stop for shutdown between passes.
            loop {
                match pass(&w, &cfg).await {
                    Ok(r)
                        if r.claimed as i64 >= cfg.batch
                            && r.reads > 0
                            && !shutdown.is_cancelled() => {}
                    Ok(_) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "following submissions failed; will try again");
                        break;
                    }
                }
            }
        }
    })
}

/// One pass: claim what is due, look at each, store what was learnt.
pub async fn pass(w: &Worker, cfg: &PollConfig) -> Result<PassReport, sqlx::Error> {
    let lease = cfg.max_backoff.max(Duration::from_secs(300));
    let due = outcomes::claim_due(&w.pool, secs(cfg.interval), secs(lease), cfg.batch).await?;
    let mut report = PassReport {
        claimed: due.len(),
        ..PassReport::default()
    };
    for d in due {
        let (decided, read) = look(w, cfg, &d).await?;
        if decided {
            report.decided += 1;
        } else {
            report.later += 1;
        }
        report.reads += usize::from(read);
    }
    Ok(report)
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX).max(1)
}

/// Looks at one submission: (a verdict was stored, impact.com was asked).
async fn look(
    w: &Worker,
    cfg: &PollConfig,
    d: &DueSubmission,
) -> Result<(bool, bool), sqlx::Error> {
    let later = |status: Option<&str>, counted: bool, after: Duration| {
        let status = status.map(str::to_owned);
        async move {
            outcomes::check_later(&w.pool, d.id, status.as_deref(), counted, secs(after)).await?;
            Ok::<(bool, bool), sqlx::Error>((false, counted))
        }
    };
    let too_old = d
        .delivered_at
        .is_some_and(|t| chrono::Duration::from_std(cfg.give_up).is_ok_and(|g| Utc::now() - t > g));
    if too_old {
        return Ok((give_up(w, d, "gave_up").await?, false));
    }
    let portal = PortalId(u64::try_from(d.portal_id).unwrap_or_default());
    let stored = match w.portals.get(&w.pool, &w.cipher, portal).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(%portal, conversion = d.id, error = %e, "cannot load the portal to follow a submission");
            return later(None, false, cfg.max_backoff).await;
        }
    };
    let creds = stored
        .as_ref()
        .and_then(|p| crate::pipeline::deliver::impact_credentials(p));
    let Some(creds) = creds else {
        return later(None, false, cfg.max_backoff).await;
    };
    if let Err(wait) = w
        .impact
        .budget()
        .may_poll(&creds.account_sid, cfg.reserve_percent)
    {
        metrics::counter!("worker_submission_polls_deferred_total", "reason" => "budget")
            .increment(1);
        return later(None, false, wait.max(cfg.interval)).await;
    }
    metrics::counter!("worker_submission_polls_total").increment(1);
    match w.impact.submission_status(&creds, &d.queued_uri).await {
        Ok(state) if state.is_complete() => {
            let reason = state.reason();
            let outcome = verdict_of(reason, d.attempts);
            let stored = outcomes::decide(
                &w.pool,
                d.id,
                &d.queued_uri,
                Verdict {
                    outcome,
                    submission_status: Some(&state.status),
                    error_type: state.error_type.as_deref().filter(|t| !t.is_empty()),
                    error_reason: reason,
                },
            )
            .await?;
            if stored {
                let label = reason_label(reason);
                metrics::counter!("worker_submissions_total", "outcome" => outcome, "reason" => label)
                    .increment(1);
                if outcome == "rejected" {
                    tracing::warn!(%portal, conversion = d.id, reason = label, "impact.com rejected a submission");
                } else {
                    tracing::debug!(%portal, conversion = d.id, outcome, "submission complete");
                }
            }
            Ok((stored, true))
        }
        Ok(state) => later(Some(&state.status), true, cfg.backoff(d.checks)).await,
        Err(ImpactError::Rejected { status: 404, .. }) => {
            Ok((give_up(w, d, "not_found").await?, true))
        }
        Err(ImpactError::RetryLater { retry_after, .. }) => {
            metrics::counter!("worker_submission_polls_deferred_total", "reason" => "rate_limited")
                .increment(1);
            later(
                None,
                true,
                retry_after.unwrap_or(cfg.max_backoff).max(cfg.interval),
            )
            .await
        }
        Err(e) => {
            let f = e.failure();
            tracing::warn!(%portal, conversion = d.id, reason = f.reason.as_str(), status = ?f.status, "could not read a submission's state");
            later(None, true, cfg.backoff(d.checks)).await
        }
    }
}

/// No verdict will come: the outcome is `unknown`.
async fn give_up(w: &Worker, d: &DueSubmission, why: &'static str) -> Result<bool, sqlx::Error> {
    let stored = outcomes::decide(
        &w.pool,
        d.id,
        &d.queued_uri,
        Verdict {
            outcome: "unknown",
            submission_status: (why == "not_found").then_some("Not Found"),
            error_type: None,
            error_reason: None,
        },
    )
    .await?;
    if stored {
        metrics::counter!("worker_submissions_total", "outcome" => "unknown", "reason" => why)
            .increment(1);
        tracing::warn!(conversion = d.id, why, "gave up following a submission");
    }
    Ok(stored)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_and_labels() {
        assert_eq!(verdict_of(None, 1), "complete");
        assert_eq!(verdict_of(Some("CONTRACT_NOT_FOUND"), 1), "rejected");
        assert_eq!(verdict_of(Some("CONV_DUPLICATE"), 1), "rejected");
        assert_eq!(verdict_of(Some("CONV_DUPLICATE"), 2), "duplicate_resend");
        assert_eq!(
            reason_label(Some("contract_not_found")),
            "CONTRACT_NOT_FOUND"
        );
        assert_eq!(reason_label(Some("anything a remote might say")), "other");
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let cfg = PollConfig {
            interval: Duration::from_secs(60),
            max_backoff: Duration::from_secs(3600),
            give_up: Duration::from_secs(86_400),
            reserve_percent: 50,
            batch: 10,
        };
        assert_eq!(cfg.backoff(0), Duration::from_secs(60));
        assert_eq!(cfg.backoff(3), Duration::from_secs(480));
        assert_eq!(cfg.backoff(30), Duration::from_secs(3600));
    }
}
