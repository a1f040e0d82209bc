//! One event, from the queue to impact.com — one path for live traffic,
//! replay and backfill: dedupe → privacy → portal gate → merges → adjust →
//! trigger → fetch → map → merged record's earlier conversion → record →
//! deliver. Each step is a module of its own;
//! [`process_event`] reads as the calls to them.
//!
//! Live traffic shares the worker's record and delivery batches across
//! messages; replay and backfill record and deliver each event as a batch of
//! one ([`Batching`]). The statements, locks and guarantees are the same.
//!
//! The stages that wait on PostgreSQL, HubSpot or impact.com are boxed
//! where they are called, and skipped before their future is made when a
//! cheap check says they have nothing to do (a known unseen event, an
//! event that is not a merge, nor a privacy matter, nor adjusted by a
//! rule). Inline, each stage's future (up to ~15 KB,
//! the largest of its branches) made the event's future ~16 KB, and every
//! stage's future and the event's were copied whole each time they were
//! moved: a tenth of the worker's CPU went to `memmove`.

pub mod adjust;
pub mod batching;
mod coalesce;
pub mod concurrent;
pub mod dead_letter;
pub mod dedupe;
pub mod deliver;
pub mod fetch;
pub mod map;
pub mod merges;
pub mod message;
pub mod portal_cache;
pub mod portal_gate;
pub mod privacy;
pub mod record;
pub mod result;
pub mod retry;
pub mod sources;
pub mod trigger;

use chrono::{DateTime, Utc};
use domain::{
    events::HubSpotEvent,
    failure::Failure,
    status::{DeliveryStatus, EventStatus},
};
use shared::db::{delivery_lease::Adopted, events::EventKey};

use crate::Worker;
pub use batching::Batching;
use fetch::{FetchRequest, fetch_object, prefetched::Prefetched};
use portal_gate::{Gate, portal_gate};
use record::EventRecord;
pub use result::EventResult;
use trigger::{Triggered, trigger};

/// Processes one event. `Err` is a transient failure after which nothing
/// final was recorded: the event must be retried.
pub async fn process_event(
    w: &Worker,
    event: &HubSpotEvent,
    received_at: Option<DateTime<Utc>>,
    prefetched: &Prefetched,
    batching: Batching,
) -> Result<EventResult, Failure> {
    let key = EventKey::of(event);
    let known_unseen = prefetched.known_unseen(&key);
    if !known_unseen && let Some(done) = Box::pin(dedupe::dedupe(w, batching, event, &key)).await? {
        return Ok(done);
    }
    let rec = EventRecord {
        w,
        batching,
        key: &key,
        event,
        received_at,
    };
    // Erasure requests; events of erased contacts (the message's lookup
    // says which may be: only those are checked here).
    if let Some(concern) = privacy::concern(w, event, !known_unseen)
        && let Some(done) = Box::pin(privacy::privacy(&rec, concern)).await?
    {
        return Ok(done);
    }
    let portal = match portal_gate(w, event.portal_id).await? {
        Gate::Open(portal) => portal,
        Gate::Closed(reason) => return Box::pin(skipped(&rec, reason)).await,
    };
    let Some(config) = portal.config.as_ref() else {
        return Box::pin(skipped(&rec, "portal_unconfigured")).await;
    };
    // A merge is recorded before anything else reads the merged ids.
    if let Some(merge) = merges::merge_of(event) {
        Box::pin(merges::note(w, event, merge)).await?;
    }
    // Adjustments first: they are idempotent on their own key, so a retry
    // of the conversion below never sends them twice.
    let adjusted = match domain::adjustments::evaluate(&config.adjustments, event) {
        Some(evaluated) => Box::pin(adjust::apply(w, event, &portal, config, evaluated)).await?,
        None => None,
    };
    let (object_type, firing) = match Box::pin(trigger(&rec, config, event, adjusted)).await? {
        Triggered::Fire(object_type, firing) => (object_type, firing),
        Triggered::Done(done) => return Ok(done),
    };
    let mappings = map::mappings(config, object_type);
    let request = FetchRequest {
        portal: event.portal_id,
        object_type,
        event,
        firing: &firing,
        mappings,
        program_id: &config.impact_program_id,
    };
    let fetched = match fetch::from_prefetched(&request, prefetched) {
        Some(context) => Ok(context),
        None => Box::pin(fetch_object(w, &portal, &request, prefetched)).await,
    };
    let (conversion, context) = match map::map(mappings, fetched) {
        (Ok(conversion), context) => (conversion, context),
        (Err(f), context) => {
            return Box::pin(map::give_up(&rec, object_type, f, context.as_ref())).await;
        }
    };
    let conversion = merges::settle(
        w,
        event,
        (object_type, &firing),
        mappings,
        context.as_ref(),
        conversion,
    )
    .await?;
    map::log_notes(event, &conversion);
    // The conversion and the event's outcome are committed together.
    let (fetched, sources_id) = match map::story(mappings, context.as_ref()) {
        Some((fetched, sources)) => {
            let id = w.sources.id(&w.pool, event.portal_id, &sources).await;
            (Some(fetched), Some(id.map_err(Failure::database)?))
        }
        None => (None, None),
    };
    let (row, first) =
        Box::pin(rec.converted(object_type, &conversion, (fetched, sources_id))).await?;
    // The row was created leased for this delivery (no statement of its own).
    let adopted = row.lease.map(|token| Adopted {
        id: row.id,
        token,
        since: tokio::time::Instant::now(),
    });
    if !first {
        // A concurrent duplicate of this event got there first; it delivers.
        if let Some(a) = adopted {
            Box::pin(deliver::let_go(w, a)).await;
        }
        return Ok(EventResult::Duplicate);
    }
    if row.status == DeliveryStatus::Delivered {
        return Ok(EventResult::AlreadyDelivered {
            conversion_id: row.id,
        });
    }
    // The row this event created is posted with the parameters it was
    // created with, not read back.
    let claim = deliver::Claim {
        id: row.id,
        adopted,
        created_with: row.created.then_some(conversion.params),
    };
    let result = Box::pin(deliver::deliver(w, batching, event.portal_id, claim)).await;
    dead_letter::refused(
        w,
        event,
        Some(object_type),
        &result,
        context.as_ref(),
        row.id,
    )
    .await?;
    result
}

/// Records the event skipped for `reason`.
async fn skipped(rec: &EventRecord<'_>, reason: &'static str) -> Result<EventResult, Failure> {
    rec.outcome(EventStatus::Skipped, reason, None).await?;
    Ok(EventResult::Skipped(reason))
}
