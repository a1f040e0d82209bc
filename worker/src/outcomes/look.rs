//! Reading submissions one by one: the conversions no listed action showed
//! credited within the grace period (rejected, or still being processed),
//! and resends. `GET /Advertisers/{SID}/APISubmissions/{BatchId}` until
//! `Complete`, backing off; the verdict from `ErrorType` and `ErrorReason`
//! (`domain::outcome::verdict`).

use std::time::Duration;

use chrono::Utc;
use domain::{
    events::PortalId,
    outcome::{self, Outcome},
};
use shared::{
    db::outcomes::{self, DueSubmission, Verdict},
    impact::{ImpactError, submission::SubmissionState},
};

use super::{PassReport, PollConfig, secs};
use crate::Worker;

/// Claims the submissions due and looks at each.
pub(super) async fn batch(
    w: &Worker,
    cfg: &PollConfig,
    report: &mut PassReport,
) -> Result<(), sqlx::Error> {
    let lease = cfg.max_backoff.max(Duration::from_secs(300));
    let first_after = secs(cfg.first_look());
    outcomes::retire_unlookable(&w.pool, first_after, cfg.batch).await?;
    let due = outcomes::claim_due(&w.pool, first_after, secs(lease), cfg.batch).await?;
    report.claimed += due.len();
    for d in due {
        let (decided, read) = look(w, cfg, &d).await?;
        if decided {
            report.decided += 1;
        } else {
            report.later += 1;
        }
        report.reads += usize::from(read);
    }
    Ok(())
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
    if let Err(wait) =
        w.impact
            .budget()
            .may_poll(&creds.account_sid, cfg.reserve_percent, cfg.interval)
    {
        metrics::counter!("worker_submission_polls_deferred_total", "reason" => "budget")
            .increment(1);
        return later(None, false, wait.max(cfg.interval)).await;
    }
    metrics::counter!("worker_submission_polls_total", "kind" => "submission").increment(1);
    match w.impact.submission_status(&creds, &d.queued_uri).await {
        Ok(state) if state.is_complete() => Ok((decide(w, d, portal, &state).await?, true)),
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

/// Stores the verdict on a `Complete` submission (see
/// `domain::outcome::verdict`).
async fn decide(
    w: &Worker,
    d: &DueSubmission,
    portal: PortalId,
    state: &SubmissionState,
) -> Result<bool, sqlx::Error> {
    let reason = state.reason();
    let outcome = outcome::verdict(state.error_type(), reason.as_deref(), d.attempts);
    let stored = outcomes::decide(
        &w.pool,
        d.id,
        &d.queued_uri,
        Verdict {
            outcome: outcome.as_str(),
            submission_status: Some(&state.status),
            error_type: state.error_type(),
            error_reason: reason.as_deref(),
        },
    )
    .await?;
    if stored {
        let label = outcome::reason_label(outcome, reason.as_deref());
        metrics::counter!("worker_submissions_total", "outcome" => outcome.as_str(), "reason" => label)
            .increment(1);
        if outcome == Outcome::Rejected {
            tracing::warn!(%portal, conversion = d.id, reason = label, "impact.com rejected a submission");
        } else {
            tracing::debug!(%portal, conversion = d.id, outcome = outcome.as_str(), "submission complete");
        }
    }
    Ok(stored)
}

/// No verdict will come: the outcome is `unknown`.
async fn give_up(w: &Worker, d: &DueSubmission, why: &'static str) -> Result<bool, sqlx::Error> {
    let stored = outcomes::decide(
        &w.pool,
        d.id,
        &d.queued_uri,
        Verdict {
            outcome: Outcome::Unknown.as_str(),
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
