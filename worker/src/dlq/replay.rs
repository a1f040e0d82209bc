//! Replaying dead letters: by default re-evaluating the events with the
//! portal's current configuration and a freshly fetched object; with
//! `as_sent`, resending the stored payload. A delivered conversion is never
//! sent again unless `force`. Every replay is written to the audit log.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use shared::{
    db::{
        self,
        dead_letters::{DeadLetter, DeadLetterId},
        events::EventKey,
    },
    events::{HubSpotEvent, PortalId, decode_message},
};
use sqlx::Row;

use crate::{
    Worker,
    dlq::{
        preview::preview,
        send::{Sent, send},
    },
    pipeline::{EventResult, process_event},
    prefetch::Prefetched,
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

fn report(id: DeadLetterId, outcome: ReplayOutcome, detail: impl Into<String>) -> ReplayReport {
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
        reevaluate(w, &letter, mode.force).await
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

fn events_of(letter: &DeadLetter) -> Result<Vec<HubSpotEvent>, serde_json::Error> {
    decode_message(&serde_json::to_vec(&letter.events)?)
}

fn portal_of(letter: &DeadLetter) -> Option<PortalId> {
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

async fn reevaluate(w: &Worker, letter: &DeadLetter, force: bool) -> ReplayReport {
    let id = letter.id;
    let Ok(events) = events_of(letter) else {
        return report(
            id,
            ReplayOutcome::Retry,
            "the stored body is not events: discard it",
        );
    };
    let mut outcomes = Vec::new();
    for event in &events {
        outcomes.push(reevaluate_event(w, event, force).await);
    }
    // The most telling outcome speaks for the whole dead letter.
    let rank = |o: &ReplayOutcome| match o {
        ReplayOutcome::Retry => 0,
        ReplayOutcome::Failed => 1,
        ReplayOutcome::Delivered => 2,
        ReplayOutcome::AlreadyDelivered => 3,
        _ => 4,
    };
    outcomes.sort_by_key(|(o, _)| rank(o));
    let detail = outcomes
        .iter()
        .map(|(_, d)| d.as_str())
        .collect::<Vec<_>>()
        .join("; ");
    let outcome = outcomes
        .first()
        .map_or(ReplayOutcome::NothingToSend, |(o, _)| *o);
    report(id, outcome, detail)
}

async fn reevaluate_event(
    w: &Worker,
    event: &HubSpotEvent,
    force: bool,
) -> (ReplayOutcome, String) {
    if let Err(e) = forget_failure(w, event).await {
        return (ReplayOutcome::Retry, format!("database: {e}"));
    }
    match process_event(w, event, None, &Prefetched::none()).await {
        Ok(EventResult::Delivered { conversion_id, .. }) => (
            ReplayOutcome::Delivered,
            format!("conversion {conversion_id} delivered"),
        ),
        Ok(EventResult::AlreadyDelivered { conversion_id }) if force => {
            forced(w, event.portal_id, conversion_id).await
        }
        Ok(EventResult::AlreadyDelivered { conversion_id }) => (
            ReplayOutcome::AlreadyDelivered,
            format!("conversion {conversion_id} was delivered already; nothing sent"),
        ),
        Ok(EventResult::Failed(f)) => (
            ReplayOutcome::Failed,
            format!("failed again, stored as a new dead letter: {f}"),
        ),
        Ok(EventResult::Duplicate) => match (force, event_conversion(w, event).await) {
            (_, Err(e)) => (ReplayOutcome::Retry, format!("database: {e}")),
            (true, Ok(Some((conversion, _)))) => forced(w, event.portal_id, conversion).await,
            (false, Ok(Some((conversion, status)))) if status == "delivered" => (
                ReplayOutcome::AlreadyDelivered,
                format!("conversion {conversion} was delivered already; nothing sent"),
            ),
            // Done before (e.g. an earlier event of an exhausted message,
            // or one no trigger fired for): nothing to send again.
            _ => (
                ReplayOutcome::NothingToSend,
                "the event was processed before; nothing sent".into(),
            ),
        },
        Ok(EventResult::Skipped(r) | EventResult::Ignored(r)) => {
            (ReplayOutcome::NothingToSend, format!("no conversion: {r}"))
        }
        Err(f) => (ReplayOutcome::Retry, f.to_string()),
    }
}

async fn forced(w: &Worker, portal: PortalId, conversion: i64) -> (ReplayOutcome, String) {
    match send(w, portal, conversion, None, true).await {
        Ok(Sent::Delivered) => (
            ReplayOutcome::Delivered,
            format!("conversion {conversion} sent again (--force)"),
        ),
        Ok(Sent::AlreadyDelivered) => (ReplayOutcome::AlreadyDelivered, "not sent".into()),
        Ok(Sent::Failed(f)) => (ReplayOutcome::Failed, f.to_string()),
        Err(f) => (ReplayOutcome::Retry, f.to_string()),
    }
}

/// The conversion an event produced, if any.
async fn event_conversion(
    w: &Worker,
    event: &HubSpotEvent,
) -> Result<Option<(i64, String)>, sqlx::Error> {
    let seen = db::events::lookup(&w.pool, &EventKey::of(event)).await?;
    Ok(seen.and_then(|s| s.conversion))
}

/// Lets the event through deduplication again when its recorded outcome is
/// a failure (its own, or its conversion's), never when it was delivered.
async fn forget_failure(w: &Worker, event: &HubSpotEvent) -> Result<(), sqlx::Error> {
    let k = EventKey::of(event);
    sqlx::query(
        "DELETE FROM webhook_events e
         WHERE e.portal_id = $1 AND e.event_id IS NOT DISTINCT FROM $2 AND e.subscription_type = $3
           AND e.object_id = $4 AND e.occurred_at = $5 AND e.property_name = $6
           AND (e.status = 'failed' OR EXISTS (SELECT 1 FROM conversions c
                WHERE c.id = e.conversion_id AND c.status = 'failed'))",
    )
    .bind(k.portal_id)
    .bind(k.event_id)
    .bind(&k.subscription_type)
    .bind(k.object_id)
    .bind(k.occurred_at)
    .bind(&k.property_name)
    .execute(&w.pool)
    .await
    .map(|_| ())
}

async fn audit(
    w: &Worker,
    letter: &DeadLetter,
    actor: &str,
    mode: ReplayMode,
    r: &ReplayReport,
) -> Result<(), sqlx::Error> {
    let detail = json!({ "dead_letter": letter.id, "as_sent": mode.as_sent, "force": mode.force, "detail": r.detail });
    db::dead_letters::audit(
        &w.pool,
        letter.portal_id,
        actor,
        "dead_letter.replay",
        &detail,
        r.outcome.as_str(),
    )
    .await
}
