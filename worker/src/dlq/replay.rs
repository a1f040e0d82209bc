//! Replaying dead letters: by default re-evaluating the events with the
//! portal's current configuration and a freshly fetched object; with
//! `as_sent`, resending the stored payload. A delivered conversion is never
//! sent again unless `force`. Every replay is written to the audit log.

use std::time::Duration;

use domain::events::{HubSpotEvent, PortalId, decode_message};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use shared::db::{
    self,
    dead_letters::{DeadLetter, DeadLetterId},
};
use sqlx::Row;

use crate::{
    Worker,
    dlq::{
        preview::preview,
        send::{Sent, send},
    },
};

/// How to replay.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ReplayMode {
    /// Show what would be sent; change nothing.
    pub dry_run: bool,
    /// Resend the stored payload instead of re-evaluating.
    pub as_sent: bool,
    /// Send even a conversion that was delivered already.
    pub force: bool,
}

/// How one replay ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplayOutcome {
    /// impact.com queued the conversion.
    Delivered,
    /// The conversion was delivered before: refused (use `force`).
    AlreadyDelivered,
    /// Failed again, for good (a new dead letter holds the new error).
    Failed,
    /// Failed transiently: the dead letter stays open.
    Retry,
    /// The events no longer convert (e.g. trigger disabled, portal paused).
    NothingToSend,
    /// Not open (replayed, discarded, or being replayed by someone else).
    NotOpen,
    /// No such dead letter.
    NotFound,
    /// Dry run: nothing done.
    DryRun,
}

impl ReplayOutcome {
    /// The label stored in the audit log.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::AlreadyDelivered => "already_delivered",
            Self::Failed => "failed",
            Self::Retry => "retry",
            Self::NothingToSend => "nothing_to_send",
            Self::NotOpen => "not_open",
            Self::NotFound => "not_found",
            Self::DryRun => "dry_run",
        }
    }

    /// True when something was sent to impact.com and queued.
    pub fn sent(self) -> bool {
        self == Self::Delivered
    }
}

/// One replay's report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReplayReport {
    /// The dead letter.
    pub id: DeadLetterId,
    /// How it ended.
    pub outcome: ReplayOutcome,
    /// Why, in words.
    pub detail: String,
    /// Dry runs: what would be sent, per event (or the stored payload).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preview: Option<Value>,
}

pub(super) fn report(
    id: DeadLetterId,
    outcome: ReplayOutcome,
    detail: impl Into<String>,
) -> ReplayReport {
    ReplayReport {
        id,
        outcome,
        detail: detail.into(),
        preview: None,
    }
}

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
    if letter.state != "open" {
        return Ok(report(
            id,
            ReplayOutcome::NotOpen,
            format!("the dead letter is {}", letter.state),
        ));
    }
    if let Some(adjustment) = letter.adjustment_id {
        return super::replay_adjustment::replay(w, &letter, adjustment, mode, actor).await;
    }
    let delivered = match letter.conversion_id {
        Some(c) => conversion_status(w, c).await?.as_deref() == Some("delivered"),
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
            "replayed"
        }
        _ => "open",
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

async fn conversion_status(w: &Worker, id: i64) -> Result<Option<String>, sqlx::Error> {
    let row = sqlx::query("SELECT status FROM conversions WHERE id = $1")
        .bind(id)
        .fetch_optional(&w.pool)
        .await?;
    Ok(row.map(|r| r.get(0)))
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

pub(super) fn events_of(letter: &DeadLetter) -> Result<Vec<HubSpotEvent>, serde_json::Error> {
    decode_message(&serde_json::to_vec(&letter.events)?)
}

pub(super) fn portal_of(letter: &DeadLetter) -> Option<PortalId> {
    letter
        .portal_id
        .and_then(|p| u64::try_from(p).ok())
        .map(PortalId)
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
    match send(w, portal, conversion, Some(params), force).await {
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

pub(super) async fn audit(
    w: &Worker,
    letter: &DeadLetter,
    actor: &str,
    mode: ReplayMode,
    r: &ReplayReport,
) -> Result<(), sqlx::Error> {
    let detail = json!({ "dead_letter": letter.id, "as_sent": mode.as_sent, "force": mode.force, "detail": r.detail });
    db::audit::record(
        &w.pool,
        letter.portal_id,
        actor,
        "dead_letter.replay",
        &detail,
        r.outcome.as_str(),
    )
    .await
}
