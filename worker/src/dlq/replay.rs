//! Replaying dead letters: by default re-evaluating the events with the
//! portal's current configuration and a freshly fetched object; with
//! `as_sent`, resending the stored payload. A delivered conversion is never
//! sent again unless `force`. Every replay is written to the audit log.
//! A replay holds its dead letter under a lease ([`super::lease`]).

use domain::status::{DeadLetterState, DeliveryStatus};
use std::time::Duration;

use serde_json::{Value, json};
use shared::db::{
    self,
    dead_letter_leases::{self as leases, Unavailable},
    dead_letters::{DeadLetter, DeadLetterId, ReasonClass},
};

pub use super::lease::Lease;
pub use super::report::{ReplayMode, ReplayOutcome, ReplayReport};
use super::{
    lease,
    report::{audit, events_of, portal_of, report},
};
use crate::{
    Worker,
    dlq::preview::preview,
    pipeline::deliver::{Sent, resend},
};

/// Replays dead letter `id` as `actor`, under a lease of its own.
pub async fn replay_one(
    w: &Worker,
    id: DeadLetterId,
    mode: ReplayMode,
    actor: &str,
) -> Result<ReplayReport, sqlx::Error> {
    replay_held(w, id, mode, actor, &Lease::fresh(actor, w.replay_lease)).await
}

/// Replays dead letter `id` as `actor` under `lease`: takes it (one
/// compare-and-set: a dead letter another replay holds is refused, one
/// whose lease expired is taken over, one the console reserved under the
/// same holder is taken on), renews the lease while it works, then ends it.
pub async fn replay_held(
    w: &Worker,
    id: DeadLetterId,
    mode: ReplayMode,
    actor: &str,
    lease: &Lease,
) -> Result<ReplayReport, sqlx::Error> {
    let Some(letter) = db::dead_letters::get(&w.pool, id).await? else {
        return Ok(report(id, ReplayOutcome::NotFound, "no such dead letter"));
    };
    if letter.reason_class == ReasonClass::Invalid.as_str() {
        let r = report(
            id,
            ReplayOutcome::NotReplayable,
            format!(
                "cannot be replayed: invalid event ({}): HubSpot sent it in a form the \
                 connector cannot read; discard it",
                letter.last_error.as_deref().unwrap_or("unreadable")
            ),
        );
        if !mode.dry_run {
            // A reservation the console made for it is given back at once.
            if letter.lease_holder.as_deref() == Some(lease.holder.as_str()) {
                leases::finish(
                    &w.pool,
                    id,
                    &lease.holder,
                    DeadLetterState::Open,
                    actor,
                    &r.detail,
                )
                .await?;
            }
            audit(w, &letter, actor, mode, &r).await?;
        }
        return Ok(r);
    }
    if mode.dry_run {
        if let Some(why) = busy(&letter, &lease.holder) {
            return Ok(report(id, ReplayOutcome::NotOpen, why));
        }
        return dry_run(w, &letter, mode).await;
    }
    let letter = match leases::claim(&w.pool, id, &lease.holder, lease.ttl, None).await? {
        Ok(l) => l,
        Err(Unavailable::NotFound) => {
            return Ok(report(id, ReplayOutcome::NotFound, "no such dead letter"));
        }
        Err(why) => return Ok(report(id, ReplayOutcome::NotOpen, why.to_string())),
    };
    let (r, state) = match lease::holding(&w.pool, id, lease, work(w, &letter, mode)).await {
        Ok(done) => done,
        Err(e) => {
            // Given back at once rather than when the lease expires.
            let why = format!("replay interrupted: {e}");
            let _ = leases::finish(
                &w.pool,
                id,
                &lease.holder,
                DeadLetterState::Open,
                actor,
                &why,
            )
            .await;
            return Err(e);
        }
    };
    let resolution = format!("{}: {}", r.outcome.as_str(), r.detail);
    if !leases::finish(&w.pool, id, &lease.holder, state, actor, &resolution).await? {
        tracing::warn!(dead_letter = %id, holder = %lease.holder, "the replay's lease was lost before it ended; the dead letter keeps its state");
    }
    audit(w, &letter, actor, mode, &r).await?;
    Ok(r)
}

/// Why `letter` cannot be replayed by `holder` now (`None`: it can): it is
/// resolved, or another replay holds it under a live lease.
fn busy(letter: &DeadLetter, holder: &str) -> Option<String> {
    match letter.state.as_str() {
        "open" => None,
        "replaying"
            if letter.lease_holder.as_deref() == Some(holder)
                || letter
                    .lease_expires_at
                    .is_some_and(|t| t < chrono::Utc::now()) =>
        {
            None
        }
        "replaying" => Some(format!(
            "already being replayed (by {})",
            letter
                .lease_holder
                .as_deref()
                .unwrap_or("an earlier version")
        )),
        state => Some(format!("the dead letter is {state}")),
    }
}

/// The replay of a taken dead letter: its report, and the state it ends in
/// (`replayed`, or `open` when nothing was sent for good).
async fn work(
    w: &Worker,
    letter: &DeadLetter,
    mode: ReplayMode,
) -> Result<(ReplayReport, DeadLetterState), sqlx::Error> {
    let id = letter.id;
    if let Some(adjustment) = letter.adjustment_id {
        let r = super::replay_adjustment::replay(w, letter, adjustment, mode).await?;
        let state = match r.outcome {
            ReplayOutcome::Delivered => DeadLetterState::Replayed,
            _ => DeadLetterState::Open,
        };
        return Ok((r, state));
    }
    let delivered = match letter.conversion_id {
        Some(c) => db::conversions::status(&w.pool, c).await? == Some(DeliveryStatus::Delivered),
        None => false,
    };
    if delivered && !mode.force {
        let r = report(
            id,
            ReplayOutcome::AlreadyDelivered,
            "its conversion was delivered already; nothing sent (use --force to send it again)",
        );
        return Ok((r, DeadLetterState::Open));
    }
    let r = if mode.as_sent {
        as_sent(w, letter, mode.force).await
    } else {
        super::reevaluate::reevaluate(w, letter, mode.force).await
    };
    let state = match r.outcome {
        ReplayOutcome::Delivered | ReplayOutcome::Failed | ReplayOutcome::NothingToSend => {
            DeadLetterState::Replayed
        }
        _ => DeadLetterState::Open,
    };
    Ok((r, state))
}

/// A dry run: what would be sent; nothing taken or changed.
async fn dry_run(
    w: &Worker,
    letter: &DeadLetter,
    mode: ReplayMode,
) -> Result<ReplayReport, sqlx::Error> {
    if let Some(adjustment) = letter.adjustment_id {
        return super::replay_adjustment::replay(w, letter, adjustment, mode).await;
    }
    let delivered = match letter.conversion_id {
        Some(c) => db::conversions::status(&w.pool, c).await? == Some(DeliveryStatus::Delivered),
        None => false,
    };
    let mut r = report(
        letter.id,
        ReplayOutcome::DryRun,
        dry_run_detail(mode, delivered),
    );
    r.preview = Some(dry_run_preview(w, letter, mode).await);
    Ok(r)
}

/// Replays `ids` in order, at most `per_sec` a second, reporting each.
pub async fn replay_many(
    w: &Worker,
    ids: &[DeadLetterId],
    mode: ReplayMode,
    actor: &str,
    per_sec: u32,
    mut each: impl FnMut(&ReplayReport),
) -> Result<Vec<ReplayReport>, sqlx::Error> {
    let period = Duration::from_secs(1) / per_sec.max(1);
    let mut tick = tokio::time::interval(period);
    let mut reports = Vec::with_capacity(ids.len());
    for id in ids {
        tick.tick().await;
        let r = replay_one(w, *id, mode, actor).await?;
        each(&r);
        reports.push(r);
    }
    Ok(reports)
}

fn dry_run_detail(mode: ReplayMode, delivered: bool) -> String {
    let how = if mode.as_sent {
        "resend the stored payload"
    } else {
        "re-evaluate with the current configuration and a fresh object"
    };
    match (delivered, mode.force) {
        (true, false) => {
            format!("would refuse: its conversion was delivered already (would {how} with --force)")
        }
        (true, true) => format!("would {how}, sending a delivered conversion again (--force)"),
        _ => format!("would {how}"),
    }
}

async fn dry_run_preview(w: &Worker, letter: &DeadLetter, mode: ReplayMode) -> Value {
    if mode.as_sent {
        return json!({ "would_send": letter.payload });
    }
    let Ok(events) = events_of(letter) else {
        return json!({ "error": "malformed", "detail": "the stored body is not events" });
    };
    let mut out = Vec::with_capacity(events.len());
    for e in &events {
        out.push(preview(w, e).await);
    }
    Value::Array(out)
}

async fn as_sent(w: &Worker, letter: &DeadLetter, force: bool) -> ReplayReport {
    let id = letter.id;
    let (Some(conversion), Some(payload), Some(portal)) = (
        letter.conversion_id,
        letter.payload.clone(),
        portal_of(letter),
    ) else {
        return report(
            id,
            ReplayOutcome::Retry,
            "no stored payload (the failure came before mapping): replay without --as-sent",
        );
    };
    let params: Vec<(String, String)> = serde_json::from_value(payload).unwrap_or_default();
    match resend(w, portal, conversion, Some(&params), force).await {
        Ok(Sent::Delivered) => report(
            id,
            ReplayOutcome::Delivered,
            format!("conversion {conversion} delivered"),
        ),
        Ok(Sent::AlreadyDelivered) => report(
            id,
            ReplayOutcome::AlreadyDelivered,
            "delivered meanwhile; nothing sent",
        ),
        // The stored payload is what it is: the dead letter stays open.
        Ok(Sent::Failed(f)) | Err(f) => report(id, ReplayOutcome::Retry, f.to_string()),
    }
}
