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
//! A batch that PostgreSQL refuses is written again one outcome per
//! transaction, so a row it cannot take (bad input) fails only its own
//! event, not the other messages' events that shared its batch.

use std::{collections::HashSet, sync::Arc};

use chrono::{DateTime, Utc};
use domain::{events::HubSpotEvent, mapping::Conversion, object_type::ObjectType};
use shared::db::{
    self,
    conversions::{ConvertedItem, RecordedConversion},
    events::{EventKey, EventOutcome},
};
use sqlx::PgPool;
use tokio::sync::oneshot;

use crate::{Worker, coalesce::Coalescer};

/// Batches being committed at once, at most. More would split the waiting
/// outcomes into smaller batches (each statement has a fixed cost); one
/// would leave PostgreSQL idle while a commit waits on the disk.
pub const MAX_COMMITTING: usize = 2;

tokio::task_local! {
    static BATCH: Arc<RecordBatch>;
}

/// Runs `f` with outcomes batched (with those of the worker's other
/// messages).
pub async fn scope<F: std::future::Future>(w: &Worker, f: F) -> F::Output {
    BATCH.scope(Arc::clone(&w.records), f).await
}

/// What to record.
enum Item {
    Converted {
        object_type: ObjectType,
        conversion: Conversion,
        key: EventKey,
        event: HubSpotEvent,
        received_at: Option<DateTime<Utc>>,
    },
    Outcome {
        key: EventKey,
        event: HubSpotEvent,
        received_at: Option<DateTime<Utc>>,
        status: &'static str,
        reason: Option<&'static str>,
        error: Option<String>,
    },
}

impl Item {
    fn key(&self) -> &EventKey {
        match self {
            Self::Converted { key, .. } | Self::Outcome { key, .. } => key,
        }
    }
}

/// What was recorded, in the item's kind.
enum Recorded {
    /// The conversion row, and whether this event was recorded first.
    Converted((RecordedConversion, bool)),
    /// Whether this event was recorded first.
    Outcome(bool),
}

/// Where a caller waits for its result.
enum Reply {
    Converted(oneshot::Sender<Result<(RecordedConversion, bool), String>>),
    Outcome(oneshot::Sender<Result<bool, String>>),
}

impl Reply {
    fn send(self, r: Result<Recorded, String>) {
        match (self, r) {
            (Self::Converted(tx), Ok(Recorded::Converted(v))) => {
                let _ = tx.send(Ok(v));
            }
            (Self::Outcome(tx), Ok(Recorded::Outcome(v))) => {
                let _ = tx.send(Ok(v));
            }
            (Self::Converted(tx), Err(e)) => {
                let _ = tx.send(Err(e));
            }
            (Self::Outcome(tx), Err(e)) => {
                let _ = tx.send(Err(e));
            }
            // Results are built in the items' kinds.
            (Self::Converted(tx), Ok(_)) => {
                let _ = tx.send(Err("recorded as another kind".into()));
            }
            (Self::Outcome(tx), Ok(_)) => {
                let _ = tx.send(Err("recorded as another kind".into()));
            }
        }
    }
}

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

    fn submit(self: &Arc<Self>, item: Item, reply: Reply) {
        if self.waiting.push((item, reply)) {
            // A task of its own, so that no caller waits on the batches of
            // others after its own result is in.
            let me = Arc::clone(self);
            tokio::spawn(async move { me.lead().await });
        }
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
        match self.write(&items).await {
            Ok(recorded) => {
                for (reply, r) in replies.into_iter().zip(recorded) {
                    reply.send(Ok(r));
                }
            }
            Err(e) if items.len() > 1 => {
                failed(&e, items.len());
                for (item, reply) in items.iter().zip(replies) {
                    let r = self
                        .write(std::slice::from_ref(item))
                        .await
                        .and_then(|mut r| r.pop().ok_or(sqlx::Error::RowNotFound));
                    if let Err(e) = &r {
                        failed(e, 1);
                    }
                    reply.send(r.map_err(|e| e.to_string()));
                }
            }
            Err(e) => {
                failed(&e, 1);
                for reply in replies {
                    reply.send(Err(e.to_string()));
                }
            }
        }
    }

    /// One transaction: `items`' outcomes, in their order.
    async fn write(&self, items: &[Item]) -> Result<Vec<Recorded>, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        // The first item of each event (and of each conversion key) is
        // written with one statement per kind; a repeat (a duplicate event
        // in the batch) one by one after them, as it would have been alone.
        let mut identities = HashSet::new();
        let mut conversion_keys = HashSet::new();
        let (mut converted, mut outcomes, mut repeats) = (Vec::new(), Vec::new(), Vec::new());
        for (i, item) in items.iter().enumerate() {
            let new_event = identities.insert(item.key());
            match item {
                Item::Converted {
                    key, conversion, ..
                } => {
                    let new_key = conversion_keys.insert((
                        key.portal_id,
                        conversion.event_type.as_str(),
                        conversion.order_id.as_str(),
                    ));
                    if new_event && new_key {
                        converted.push(i);
                    } else {
                        repeats.push(i);
                    }
                }
                Item::Outcome { .. } if new_event => outcomes.push(i),
                Item::Outcome { .. } => repeats.push(i),
            }
        }
        let mut out: Vec<Option<Recorded>> = items.iter().map(|_| None).collect();
        let rows: Vec<ConvertedItem<'_>> = converted
            .iter()
            .filter_map(|i| match &items[*i] {
                Item::Converted {
                    object_type,
                    conversion,
                    key,
                    event,
                    received_at,
                } => Some(ConvertedItem {
                    object_type: *object_type,
                    conversion,
                    key,
                    event,
                    received_at: *received_at,
                }),
                Item::Outcome { .. } => None,
            })
            .collect();
        let recorded = db::conversions::record_converted_many(&mut *tx, &rows).await?;
        for (i, r) in converted.iter().zip(recorded) {
            out[*i] = Some(Recorded::Converted(r));
        }
        let rows: Vec<_> = outcomes
            .iter()
            .filter_map(|i| match &items[*i] {
                Item::Outcome {
                    key,
                    event,
                    received_at,
                    status,
                    reason,
                    error,
                } => Some((
                    key,
                    event,
                    *received_at,
                    EventOutcome {
                        status,
                        reason: *reason,
                        error: error.as_deref(),
                        conversion_id: None,
                    },
                )),
                Item::Converted { .. } => None,
            })
            .collect();
        let recorded = db::events::record_many(&mut *tx, &rows).await?;
        for (i, first) in outcomes.iter().zip(recorded) {
            out[*i] = Some(Recorded::Outcome(first));
        }
        for i in repeats {
            out[i] = Some(match &items[i] {
                Item::Converted {
                    object_type,
                    conversion,
                    key,
                    event,
                    received_at,
                } => Recorded::Converted(
                    db::conversions::record_converted(
                        &mut *tx,
                        *object_type,
                        conversion,
                        key,
                        event,
                        *received_at,
                    )
                    .await?,
                ),
                Item::Outcome {
                    key,
                    event,
                    received_at,
                    status,
                    reason,
                    error,
                } => {
                    let outcome = EventOutcome {
                        status,
                        reason: *reason,
                        error: error.as_deref(),
                        conversion_id: None,
                    };
                    Recorded::Outcome(
                        db::events::record(&mut *tx, key, event, *received_at, &outcome).await?,
                    )
                }
            });
        }
        tx.commit().await?;
        out.into_iter()
            .map(|r| r.ok_or(sqlx::Error::RowNotFound))
            .collect()
    }
}

fn failed(e: &sqlx::Error, outcomes: usize) {
    if outcomes > 1 {
        tracing::warn!(error = %e, outcomes, "recording a batch of event outcomes failed; writing them one by one");
    } else {
        tracing::warn!(error = %e, "recording an event outcome failed; its message will be retried");
    }
}

/// [`db::conversions::record_converted`], batched when in a message's scope.
pub async fn converted(
    w: &Worker,
    object_type: ObjectType,
    conversion: &Conversion,
    key: &EventKey,
    event: &HubSpotEvent,
    received_at: Option<DateTime<Utc>>,
) -> Result<(RecordedConversion, bool), String> {
    let Ok(batch) = BATCH.try_with(Arc::clone) else {
        return db::conversions::record_converted(
            &w.pool,
            object_type,
            conversion,
            key,
            event,
            received_at,
        )
        .await
        .map_err(|e| e.to_string());
    };
    let (reply, rx) = oneshot::channel();
    batch.submit(
        Item::Converted {
            object_type,
            conversion: conversion.clone(),
            key: key.clone(),
            event: event.clone(),
            received_at,
        },
        Reply::Converted(reply),
    );
    rx.await
        .unwrap_or_else(|_| Err("the outcome batch was not committed".into()))
}

/// [`db::events::record`] of an outcome without conversion (`status`,
/// `reason`, `error`), batched when in a message's scope.
pub async fn outcome(
    w: &Worker,
    key: &EventKey,
    event: &HubSpotEvent,
    received_at: Option<DateTime<Utc>>,
    (status, reason, error): (&'static str, &'static str, Option<String>),
) -> Result<bool, String> {
    let Ok(batch) = BATCH.try_with(Arc::clone) else {
        let outcome = EventOutcome {
            status,
            reason: Some(reason),
            error: error.as_deref(),
            conversion_id: None,
        };
        return db::events::record(&w.pool, key, event, received_at, &outcome)
            .await
            .map_err(|e| e.to_string());
    };
    let (reply, rx) = oneshot::channel();
    batch.submit(
        Item::Outcome {
            key: key.clone(),
            event: event.clone(),
            received_at,
            status,
            reason: Some(reason),
            error,
        },
        Reply::Outcome(reply),
    );
    rx.await
        .unwrap_or_else(|_| Err("the outcome batch was not committed".into()))
}
