//! Event outcomes of one message, committed in batches: one transaction
//! (one WAL flush) for the events that finished meanwhile, instead of one
//! commit per event. On this 2-core machine a commit per event capped a
//! worker near 1,000 events/s, waiting on the disk.
//!
//! Same opportunistic coalescing as [`crate::deliver_batch`]: the first
//! outcome of a message is written at once; those that arrive while a batch
//! is being committed form the next one. A caller learns its result only
//! after the commit, so what follows (the delivery) sees committed rows.

use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
};

use chrono::{DateTime, Utc};
use shared::{
    db::{
        self,
        conversions::{ConversionRow, ConvertedItem},
        events::{EventKey, EventOutcome},
    },
    events::HubSpotEvent,
    mapping::Conversion,
    object_type::ObjectType,
};
use tokio::sync::oneshot;

use crate::Worker;

tokio::task_local! {
    static BATCH: Arc<RecordBatch>;
}

/// Runs `f` with outcomes batched.
pub async fn scope<F: std::future::Future>(w: &Worker, f: F) -> F::Output {
    BATCH.scope(Arc::new(RecordBatch::new(w.clone())), f).await
}

enum Item {
    Converted {
        object_type: ObjectType,
        conversion: Conversion,
        key: EventKey,
        event: HubSpotEvent,
        received_at: Option<DateTime<Utc>>,
        reply: oneshot::Sender<Result<(ConversionRow, bool), String>>,
    },
    Outcome {
        key: EventKey,
        event: HubSpotEvent,
        received_at: Option<DateTime<Utc>>,
        status: &'static str,
        reason: Option<&'static str>,
        error: Option<String>,
        reply: oneshot::Sender<Result<bool, String>>,
    },
}

/// Outcomes waiting for the next commit.
pub struct RecordBatch {
    w: Worker,
    state: Mutex<(Vec<Item>, bool)>,
}

impl RecordBatch {
    fn new(w: Worker) -> Self {
        Self {
            w,
            state: Mutex::default(),
        }
    }

    async fn submit(&self, item: Item) {
        let lead = {
            let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
            s.0.push(item);
            !std::mem::replace(&mut s.1, true)
        };
        if !lead {
            return;
        }
        loop {
            let batch = {
                let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
                if s.0.is_empty() {
                    s.1 = false;
                    return;
                }
                std::mem::take(&mut s.0)
            };
            let started = std::time::Instant::now();
            self.commit(batch).await;
            metrics::histogram!("worker_record_batch_seconds")
                .record(started.elapsed().as_secs_f64());
        }
    }

    async fn commit(&self, batch: Vec<Item>) {
        metrics::histogram!("worker_record_batch_size").record(batch.len() as f64);
        // On any error the whole batch is rolled back, and dropping the
        // items drops their reply senders: every caller sees a transient
        // database failure, and its message is retried.
        let mut tx = match self.w.pool.begin().await {
            Ok(tx) => tx,
            Err(e) => return failed(&e),
        };
        // The first item of each event (and of each conversion key) is
        // written with one statement per kind; a repeat (a duplicate event
        // in the batch) one by one after them, as it would have been alone.
        let mut identities = HashSet::new();
        let mut conversion_keys = HashSet::new();
        let (mut converted, mut outcomes, mut repeats) = (Vec::new(), Vec::new(), Vec::new());
        for item in batch {
            let fresh = match &item {
                Item::Converted {
                    key, conversion, ..
                } => {
                    let new_event = identities.insert(key.clone());
                    let new_key = conversion_keys.insert((
                        key.portal_id,
                        conversion.event_type.clone(),
                        conversion.order_id.clone(),
                    ));
                    new_event && new_key
                }
                Item::Outcome { key, .. } => identities.insert(key.clone()),
            };
            match item {
                Item::Converted { .. } if fresh => converted.push(item),
                Item::Outcome { .. } if fresh => outcomes.push(item),
                _ => repeats.push(item),
            }
        }
        let mut done: Vec<Box<dyn FnOnce() + Send>> = Vec::new();
        let rows: Vec<ConvertedItem<'_>> = converted
            .iter()
            .filter_map(|item| match item {
                Item::Converted {
                    object_type,
                    conversion,
                    key,
                    event,
                    received_at,
                    ..
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
        let recorded = match db::conversions::record_converted_many(&mut *tx, &rows).await {
            Ok(r) => r,
            Err(e) => return failed(&e),
        };
        drop(rows);
        for (item, r) in converted.into_iter().zip(recorded) {
            if let Item::Converted { reply, .. } = item {
                done.push(Box::new(move || {
                    let _ = reply.send(Ok(r));
                }));
            }
        }
        let rows: Vec<_> = outcomes
            .iter()
            .filter_map(|item| match item {
                Item::Outcome {
                    key,
                    event,
                    received_at,
                    status,
                    reason,
                    error,
                    ..
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
        let recorded = match db::events::record_many(&mut *tx, &rows).await {
            Ok(r) => r,
            Err(e) => return failed(&e),
        };
        drop(rows);
        for (item, first) in outcomes.into_iter().zip(recorded) {
            if let Item::Outcome { reply, .. } = item {
                done.push(Box::new(move || {
                    let _ = reply.send(Ok(first));
                }));
            }
        }
        for item in repeats {
            match item {
                Item::Converted {
                    object_type,
                    conversion,
                    key,
                    event,
                    received_at,
                    reply,
                } => {
                    match db::conversions::record_converted(
                        &mut *tx,
                        object_type,
                        &conversion,
                        &key,
                        &event,
                        received_at,
                    )
                    .await
                    {
                        Ok(r) => done.push(Box::new(move || {
                            let _ = reply.send(Ok(r));
                        })),
                        Err(e) => return failed(&e),
                    }
                }
                Item::Outcome {
                    key,
                    event,
                    received_at,
                    status,
                    reason,
                    error,
                    reply,
                } => {
                    let outcome = EventOutcome {
                        status,
                        reason,
                        error: error.as_deref(),
                        conversion_id: None,
                    };
                    match db::events::record(&mut *tx, &key, &event, received_at, &outcome).await {
                        Ok(first) => done.push(Box::new(move || {
                            let _ = reply.send(Ok(first));
                        })),
                        Err(e) => return failed(&e),
                    }
                }
            }
        }
        match tx.commit().await {
            Ok(()) => done.into_iter().for_each(|f| f()),
            // Dropping the closures drops their senders: the callers see a
            // database failure (nothing was committed).
            Err(e) => tracing::warn!(error = %e, "committing event outcomes failed"),
        }
    }
}

fn failed(e: &sqlx::Error) {
    tracing::warn!(error = %e, "recording event outcomes failed; the batch is rolled back");
}

/// [`db::conversions::record_converted`], batched when in a message's scope.
pub async fn converted(
    w: &Worker,
    object_type: ObjectType,
    conversion: &Conversion,
    key: &EventKey,
    event: &HubSpotEvent,
    received_at: Option<DateTime<Utc>>,
) -> Result<(ConversionRow, bool), String> {
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
    batch
        .submit(Item::Converted {
            object_type,
            conversion: conversion.clone(),
            key: key.clone(),
            event: event.clone(),
            received_at,
            reply,
        })
        .await;
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
    batch
        .submit(Item::Outcome {
            key: key.clone(),
            event: event.clone(),
            received_at,
            status,
            reason: Some(reason),
            error,
            reply,
        })
        .await;
    rx.await
        .unwrap_or_else(|_| Err("the outcome batch was not committed".into()))
}
