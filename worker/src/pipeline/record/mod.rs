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

mod write;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use domain::{
    events::HubSpotEvent, failure::Failure, mapping::Conversion, object_type::ObjectType,
    status::EventStatus,
};
use shared::db::{conversions::RecordedConversion, events::EventKey};
use sqlx::PgPool;
use tokio::sync::oneshot;

use crate::{
    Worker,
    pipeline::{batching::Batching, coalesce::Coalescer},
};
use write::{Item, Recorded, write};

/// Batches being committed at once, at most. More would split the waiting
/// outcomes into smaller batches (each statement has a fixed cost); one
/// would leave PostgreSQL idle while a commit waits on the disk.
pub const MAX_COMMITTING: usize = 2;

/// Why an outcome was not recorded (its event is retried).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// PostgreSQL refused or was unreachable.
    #[error("{0}")]
    Database(String),
    /// The batch holding it was dropped before its commit.
    #[error("the outcome batch was not committed")]
    NotCommitted,
}

impl From<sqlx::Error> for RecordError {
    fn from(e: sqlx::Error) -> Self {
        Self::Database(e.to_string())
    }
}

impl From<RecordError> for Failure {
    fn from(e: RecordError) -> Self {
        Failure::database(e)
    }
}

type Reply = oneshot::Sender<Result<Recorded, RecordError>>;

/// Outcomes waiting for the next commit; one per worker.
pub struct RecordBatch {
    pool: PgPool,
    waiting: Coalescer<(Item, Reply)>,
}

impl RecordBatch {
    /// A batcher writing to `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            waiting: Coalescer::new(MAX_COMMITTING),
        }
    }

    /// Records `item` with the batch of `batching`.
    async fn record(
        self: &Arc<Self>,
        batching: Batching,
        item: Item,
    ) -> Result<Recorded, RecordError> {
        if batching == Batching::Alone {
            let mut recorded = write(&self.pool, std::slice::from_ref(&item)).await?;
            return recorded.pop().ok_or(RecordError::NotCommitted);
        }
        let (reply, rx) = oneshot::channel();
        if self.waiting.push((item, reply)) {
            // A task of its own, so that no caller waits on the batches of
            // others after its own result is in.
            let me = Arc::clone(self);
            tokio::spawn(async move { me.lead().await });
        }
        rx.await.unwrap_or(Err(RecordError::NotCommitted))
    }

    /// Commits batches until none waits.
    async fn lead(&self) {
        while let Some(batch) = self.waiting.next_batch() {
            let started = std::time::Instant::now();
            metrics::histogram!("worker_record_batch_size").record(batch.len() as f64);
            self.commit(batch).await;
            metrics::histogram!("worker_record_batch_seconds")
                .record(started.elapsed().as_secs_f64());
        }
    }

    async fn commit(&self, batch: Vec<(Item, Reply)>) {
        let (items, replies): (Vec<Item>, Vec<Reply>) = batch.into_iter().unzip();
        match write(&self.pool, &items).await {
            Ok(recorded) => {
                for (reply, r) in replies.into_iter().zip(recorded) {
                    let _ = reply.send(Ok(r));
                }
            }
            Err(e) if items.len() > 1 => {
                failed(&e, items.len());
                for (item, reply) in items.iter().zip(replies) {
                    let r = write(&self.pool, std::slice::from_ref(item))
                        .await
                        .and_then(|mut r| r.pop().ok_or(sqlx::Error::RowNotFound));
                    if let Err(e) = &r {
                        failed(e, 1);
                    }
                    let _ = reply.send(r.map_err(RecordError::from));
                }
            }
            Err(e) => {
                failed(&e, 1);
                for reply in replies {
                    let _ = reply.send(Err(RecordError::Database(e.to_string())));
                }
            }
        }
    }
}

fn failed(e: &sqlx::Error, outcomes: usize) {
    if outcomes > 1 {
        tracing::warn!(error = %e, outcomes, "recording a batch of event outcomes failed; writing them one by one");
    } else {
        tracing::warn!(error = %e, "recording an event outcome failed; its message will be retried");
    }
}

/// Records `conversion` and the event's outcome (`converted`) together: the
/// conversion row, and whether this event was recorded first.
pub async fn converted(
    w: &Worker,
    batching: Batching,
    object_type: ObjectType,
    conversion: &Conversion,
    (key, event, received_at): (&EventKey, &HubSpotEvent, Option<DateTime<Utc>>),
) -> Result<(RecordedConversion, bool), RecordError> {
    let item = Item::Converted {
        object_type,
        conversion: conversion.clone(),
        key: key.clone(),
        event: event.clone(),
        received_at,
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

    /// Records the event's conversion with its outcome.
    pub async fn converted(
        &self,
        object_type: ObjectType,
        conversion: &Conversion,
    ) -> Result<(RecordedConversion, bool), Failure> {
        let event = (self.key, self.event, self.received_at);
        Ok(converted(self.w, self.batching, object_type, conversion, event).await?)
    }
}
