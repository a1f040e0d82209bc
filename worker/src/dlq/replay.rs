//! Replaying dead letters: by default re-evaluating the events with the
//! portal's current configuration and a freshly fetched object; with
//! `as_sent`, resending the stored payload. A delivered conversion is never
//! sent again unless `force`. Every replay is written to the audit log.

use domain::status::{DeadLetterState, DeliveryStatus};
use std::time::Duration;

use serde_json::{Value, json};
use shared::db::{
    self,
    dead_letters::{DeadLetter, DeadLetterId, ReasonClass},
};

pub use super::report::{ReplayMode, ReplayOutcome, ReplayReport};
use super::report::{audit, events_of, portal_of, report};
use crate::{
    Worker,
    dlq::preview::preview,
    pipeline::deliver::{Sent, resend},
};

/// Replays dead letter `id` as `actor`.
pub async fn replay_one(
    w: &Worker,
    id: DeadLetterId,
    mode: ReplayMode,
    actor: &str,
) -> Result<ReplayReport, sqlx::Error> {
    let Some(letter) = db::dead_letters::get(&w.pool, id).await? else {
        return Ok(report(id, ReplayOutcome::NotFound, "no such dead letter"));
    };
    if !letter.is_open() {
        return Ok(report(
            id,
            ReplayOutcome::NotOpen,
            format!("the dead letter is {}", letter.state),
        ));
    }
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
            audit(w, &letter, actor, mode, &r).await?;
        }
        return Ok(r);
    }
    if let Some(adjustment) = letter.adjustment_id {
        return super::replay_adjustment::replay(w, &letter, adjustment, mode, actor).await;
    }
    let delivered = match letter.conversion_id {
        Some(c) => db::conversions::status(&w.pool, c).await? == Some(DeliveryStatus::Delivered),
        None => false,
    };
    if mode.dry_run {
        let mut r = report(id, ReplayOutcome::DryRun, dry_run_detail(mode, delivered));
        r.preview = Some(dry_run_preview(w, &letter, mode).await);
        return Ok(r);
    }
    if delivered && !mode.force {
        let r = report(
            id,
            ReplayOutcome::AlreadyDelivered,
            "its conversion was delivered already; nothing sent (use --force to send it again)",
        );
        audit(w, &letter, actor, mode, &r).await?;
        return Ok(r);
    }
    // Only one replay at a time takes a dead letter.
    let Some(letter) = db::dead_letters::claim(&w.pool, id).await? else {
        return Ok(report(
            id,
            ReplayOutcome::NotOpen,
            "taken by another replay",
        ));
    };
    let r = if mode.as_sent {
        as_sent(w, &letter, mode.force).await
    } else {
        super::reevaluate::reevaluate(w, &letter, mode.force).await
    };
    let state = match r.outcome {
        ReplayOutcome::Delivered | ReplayOutcome::Failed | ReplayOutcome::NothingToSend => {
            DeadLetterState::Replayed
        }
        _ => DeadLetterState::Open,
    };
    let resolution = format!("{}: {}", r.outcome.as_str(), r.detail);
    db::dead_letters::resolve(&w.pool, id, state, actor, &resolution).await?;
    audit(w, &letter, actor, mode, &r).await?;
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
