//! Re-evaluating a dead letter's events: the portal's current configuration,
//! a freshly fetched object, then the normal pipeline (deduplication,
//! conversion lease, delivery), so a replay never sends what live traffic sent.

use domain::{
    events::{HubSpotEvent, PortalId},
    status::DeliveryStatus,
};
use shared::db::{self, events::EventKey};

use super::report::{ReplayOutcome, ReplayReport, events_of, report};
use crate::{
    Worker,
    pipeline::{
        Batching, EventResult,
        deliver::{Sent, resend},
        fetch::prefetched::Prefetched,
        process_event,
    },
};
use shared::db::dead_letters::DeadLetter;

/// Re-evaluates every event of `letter`; `force` sends delivered conversions again.
pub(super) async fn reevaluate(w: &Worker, letter: &DeadLetter, force: bool) -> ReplayReport {
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
    match process_event(w, event, None, &Prefetched::none(), Batching::Alone).await {
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
            (false, Ok(Some((conversion, DeliveryStatus::Delivered)))) => (
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
        Ok(EventResult::Adjusted { kind, sent, .. }) if sent > 0 => (
            ReplayOutcome::Delivered,
            format!("{sent} {kind}(s) delivered"),
        ),
        Ok(EventResult::Adjusted { reason, .. }) => (
            ReplayOutcome::NothingToSend,
            format!("nothing adjusted: {reason}"),
        ),
        Ok(EventResult::Skipped(r) | EventResult::Ignored(r)) => {
            (ReplayOutcome::NothingToSend, format!("no conversion: {r}"))
        }
        Err(f) => (ReplayOutcome::Retry, f.to_string()),
    }
}

async fn forced(w: &Worker, portal: PortalId, conversion: i64) -> (ReplayOutcome, String) {
    match resend(w, portal, conversion, None, true).await {
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
) -> Result<Option<(i64, DeliveryStatus)>, sqlx::Error> {
    let seen = db::events::lookup(&w.pool, &EventKey::of(event)).await?;
    Ok(seen.and_then(|s| s.conversion))
}

/// Lets the event through deduplication again when its recorded outcome is
/// a failure (its own, or its conversion's), never when it was delivered.
async fn forget_failure(w: &Worker, event: &HubSpotEvent) -> Result<(), sqlx::Error> {
    db::events::forget_failure(&w.pool, &EventKey::of(event))
        .await
        .map(|_| ())
}
