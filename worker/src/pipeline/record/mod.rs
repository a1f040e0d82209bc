//! Event outcomes, committed in batches: one transaction (one WAL flush)
//! and one statement per kind for the events that finished meanwhile,
//! instead of one commit per event. On this 2-core machine a commit per
//! event capped a worker near 1,000 events/s, waiting on the disk; and a
//! statement costs PostgreSQL ~0.5 ms before its first row, so batches of
//! 50 rows cost about half as much per row as batches of 12.
//!
//! One batcher serves all the messages a worker has in progress (the
//! events of 8 messages share its statements), with opportunistic
//! coalescing: an outcome arriving while fewer than [`MAX_COMMITTING`]
//! batches are being committed starts a commit at once; those that arrive
//! meanwhile form the next batch. So batching adds no wait when the worker
//! is quiet. A caller learns its result only after the commit, so what
//! follows (the delivery) sees committed rows.
//!
//! Replay and backfill record an event as a batch of one
//! ([`Batching::Alone`]): the same statements, committed before the call
//! returns.
//!
//! A batch that PostgreSQL refuses is written again one outcome per
//! transaction, so a row it cannot take (bad input) fails only its own
//! event, not the other messages' events that shared its batch.

pub mod batch;
mod write;

use chrono::{DateTime, Utc};
use domain::{
    events::HubSpotEvent, failure::Failure, mapping::Conversion, object_type::ObjectType,
    status::EventStatus,
};
use shared::db::{conversions::RecordedConversion, events::EventKey};

use crate::{Worker, pipeline::batching::Batching};
pub use batch::{MAX_COMMITTING, RecordBatch, RecordError};
use write::{Item, Recorded};

/// Records `conversion` and the event's outcome (`converted`) together: the
/// conversion row, and whether this event was recorded first.
pub async fn converted(
    w: &Worker,
    batching: Batching,
    object_type: ObjectType,
    conversion: &Conversion,
    event: (&EventKey, &HubSpotEvent, Option<DateTime<Utc>>),
) -> Result<(RecordedConversion, bool), RecordError> {
    converted_with_story(w, batching, object_type, (conversion, None, None), event).await
}

/// As [`converted`], keeping the object as fetched and (by its stored id)
/// each field's source for the website's conversion page (`fetched`,
/// `sources_id`).
pub async fn converted_with_story(
    w: &Worker,
    batching: Batching,
    object_type: ObjectType,
    (conversion, fetched, sources_id): (&Conversion, Option<serde_json::Value>, Option<i64>),
    (key, event, received_at): (&EventKey, &HubSpotEvent, Option<DateTime<Utc>>),
) -> Result<(RecordedConversion, bool), RecordError> {
    let item = Item::Converted {
        object_type,
        conversion: conversion.clone(),
        key: key.clone(),
        event: event.clone(),
        received_at,
        fetched,
        sources_id,
    };
    match w.records.record(batching, item).await? {
        Recorded::Converted(r) => Ok(r),
        // Results are built in the items' kinds.
        Recorded::Outcome(_) => Err(RecordError::NotCommitted),
    }
}

/// Records an event's outcome without conversion (`status`, `reason`,
/// `error`): whether this event was recorded first.
pub async fn outcome(
    w: &Worker,
    batching: Batching,
    (key, event, received_at): (&EventKey, &HubSpotEvent, Option<DateTime<Utc>>),
    (status, reason, error): (EventStatus, &'static str, Option<String>),
) -> Result<bool, RecordError> {
    let item = Item::Outcome {
        key: key.clone(),
        event: event.clone(),
        received_at,
        status,
        reason: Some(reason),
        error,
    };
    match w.records.record(batching, item).await? {
        Recorded::Outcome(first) => Ok(first),
        // Results are built in the items' kinds.
        Recorded::Converted(_) => Err(RecordError::NotCommitted),
    }
}

/// One event's recording, as the pipeline's stages see it.
#[derive(Clone, Copy)]
pub struct EventRecord<'a> {
    /// The worker.
    pub w: &'a Worker,
    /// Shared batches or a batch of one.
    pub batching: Batching,
    /// The event's identity.
    pub key: &'a EventKey,
    /// The event as stored.
    pub event: &'a HubSpotEvent,
    /// When ingest accepted it.
    pub received_at: Option<DateTime<Utc>>,
}

impl<'a> EventRecord<'a> {
    /// The same recording, storing `event` instead (e.g. scrubbed).
    pub fn storing(self, event: &'a HubSpotEvent) -> Self {
        Self { event, ..self }
    }

    /// Records an outcome without conversion.
    pub async fn outcome(
        &self,
        status: EventStatus,
        reason: &'static str,
        error: Option<String>,
    ) -> Result<bool, Failure> {
        let event = (self.key, self.event, self.received_at);
        Ok(outcome(self.w, self.batching, event, (status, reason, error)).await?)
    }

    /// Records the event's conversion with its outcome, and the object as
    /// fetched with the stored id of each field's source (`fetched`,
    /// `sources_id`; see `crate::pipeline::map::story`).
    pub async fn converted(
        &self,
        object_type: ObjectType,
        conversion: &Conversion,
        (fetched, sources_id): (Option<serde_json::Value>, Option<i64>),
    ) -> Result<(RecordedConversion, bool), Failure> {
        let event = (self.key, self.event, self.received_at);
        let conv = (conversion, fetched, sources_id);
        Ok(converted_with_story(self.w, self.batching, object_type, conv, event).await?)
    }
}
