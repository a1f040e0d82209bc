//! Deliveries, batched per portal across the worker's messages: the
//! conversions recorded meanwhile are locked together on one PostgreSQL
//! connection, posted to impact.com concurrently (over the HTTP client's
//! kept-alive connections), and marked delivered in one statement.
//!
//! Posting one conversion per transaction holds a database connection for
//! impact.com's whole answer time (~50 ms): a pool of 48 would cap a worker
//! near 900 conversions/s. Batched, one connection serves a whole batch; and
//! the lock and update statements cost PostgreSQL per statement as much as
//! per row, so batches shared by all the messages of a portal (not one per
//! message) halve their cost.
//!
//! Batching adds no wait: a delivery arriving while fewer than
//! [`MAX_FLUSHING`] batches of its portal are being posted starts one at
//! once; deliveries that arrive meanwhile form the next batch (opportunistic
//! coalescing). Portals never wait on each other's batches. The guarantees
//! of [`crate::deliver`] hold: rows stay locked (`FOR UPDATE`) from before
//! the POST until the outcome is committed, and a delivered row is never
//! posted again.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use domain::{events::PortalId, failure::Failure};
use futures::StreamExt;
use shared::db;
use tokio::sync::oneshot;

use crate::{Worker, coalesce::Coalescer, pipeline::EventResult};

type Reply = oneshot::Sender<Result<EventResult, Failure>>;

/// Batches of one portal being posted at once, at most.
pub const MAX_FLUSHING: usize = 2;

tokio::task_local! {
    static IN_MESSAGE: ();
}

/// Runs `f` with deliveries batched (see the module docs).
pub async fn scope<F: std::future::Future>(f: F) -> F::Output {
    IN_MESSAGE.scope((), f).await
}

/// Whether deliveries are batched here (within a message).
pub fn batched() -> bool {
    IN_MESSAGE.try_with(|_| ()).is_ok()
}

/// The delivery batches of a worker, one per portal.
#[derive(Default)]
pub struct DeliveryBatches {
    portals: Mutex<HashMap<PortalId, Arc<DeliveryBatch>>>,
}

impl DeliveryBatches {
    /// Delivers conversion `id` of `portal` with the portal's next batch.
    pub async fn deliver(
        &self,
        w: &Worker,
        portal: PortalId,
        id: i64,
    ) -> Result<EventResult, Failure> {
        let batch = {
            let mut portals = self.portals.lock().unwrap_or_else(|e| e.into_inner());
            Arc::clone(portals.entry(portal).or_default())
        };
        batch.deliver(w, portal, id).await
    }
}

/// Deliveries of one portal waiting for the next batch.
pub struct DeliveryBatch {
    waiting: Coalescer<(i64, Reply)>,
}

impl Default for DeliveryBatch {
    fn default() -> Self {
        Self {
            waiting: Coalescer::new(MAX_FLUSHING),
        }
    }
}

impl DeliveryBatch {
    async fn deliver(
        self: Arc<Self>,
        w: &Worker,
        portal: PortalId,
        id: i64,
    ) -> Result<EventResult, Failure> {
        let (tx, rx) = oneshot::channel();
        if self.waiting.push((id, tx)) {
            // A task of its own: no caller waits on others' batches after
            // its own result is in.
            let w = w.clone();
            tokio::spawn(async move { self.lead(&w, portal).await });
        }
        rx.await.unwrap_or_else(|_| {
            Err(Failure::transient(
                "delivery_interrupted",
                "the delivery batch was interrupted",
            ))
        })
    }

    /// Posts batches until none waits.
    async fn lead(&self, w: &Worker, portal: PortalId) {
        while let Some(batch) = self.waiting.next_batch() {
            self.flush(w, portal, batch).await;
        }
    }

    async fn flush(&self, w: &Worker, portal: PortalId, items: Vec<(i64, Reply)>) {
        let started = std::time::Instant::now();
        metrics::histogram!("worker_delivery_batch_size").record(items.len() as f64);
        let ids: Vec<i64> = items.iter().map(|(id, _)| *id).collect();
        let mut results = match portal_batch(w, portal, &ids).await {
            Ok(r) => r,
            Err(f) => ids.iter().map(|id| (*id, Err(f.clone()))).collect(),
        };
        for (id, reply) in items {
            let r = results
                .remove(&id)
                .unwrap_or(Ok(EventResult::AlreadyDelivered { conversion_id: id }));
            let _ = reply.send(r);
        }
        metrics::histogram!("worker_delivery_batch_seconds")
            .record(started.elapsed().as_secs_f64());
    }
}

/// One transaction: lock, post, record the outcomes, commit.
async fn portal_batch(
    w: &Worker,
    portal: PortalId,
    ids: &[i64],
) -> Result<HashMap<i64, Result<EventResult, Failure>>, Failure> {
    let (stored, creds) = crate::deliver::portal_credentials(w, portal).await?;
    let mut unique = ids.to_vec();
    unique.sort_unstable();
    unique.dedup();
    let mut out: HashMap<i64, Result<EventResult, Failure>> = unique
        .iter()
        .map(|id| (*id, Ok(EventResult::Skipped("unknown_portal"))))
        .collect();
    let mut tx = w.pool.begin().await.map_err(Failure::database)?;
    let rows = db::conversions::lock_many(&mut *tx, &unique)
        .await
        .map_err(Failure::database)?;
    let mut to_post = Vec::new();
    for row in rows {
        if row.status == "delivered" {
            metrics::counter!("worker_conversions_total", "outcome" => "already_delivered")
                .increment(1);
            out.insert(
                row.id,
                Ok(EventResult::AlreadyDelivered {
                    conversion_id: row.id,
                }),
            );
        } else {
            to_post.push(row);
        }
    }
    let Some(creds) = creds else {
        let f = Failure::permanent(
            "portal_unconfigured",
            "the portal has no impact.com credentials",
        );
        for row in &to_post {
            db::conversions::mark_attempt_failed(&mut *tx, row.id, &f)
                .await
                .map_err(Failure::database)?;
            out.insert(row.id, Ok(EventResult::Failed(f.clone())));
        }
        tx.commit().await.map_err(Failure::database)?;
        return Ok(out);
    };
    let creds = &creds;
    let answers: Vec<_> = futures::stream::iter(to_post)
        .map(|row| async move {
            // Short blips are retried in process (the rows stay locked).
            let answer = w
                .retry
                .run("impact_submit", || async {
                    w.impact
                        .submit_conversion(creds, &row.params)
                        .await
                        .map_err(|e| e.failure())
                })
                .await;
            (row.id, answer)
        })
        .buffer_unordered(w.delivery_concurrency)
        .collect()
        .await;
    let mut delivered = Vec::new();
    let mut auth_failure = None;
    for (id, answer) in answers {
        match answer {
            Ok(queued) => {
                out.insert(
                    id,
                    Ok(EventResult::Delivered {
                        conversion_id: id,
                        queued_uri: queued.queued_uri.clone(),
                    }),
                );
                delivered.push((id, queued.queued_uri));
            }
            Err(f) => {
                db::conversions::mark_attempt_failed(&mut *tx, id, &f)
                    .await
                    .map_err(Failure::database)?;
                metrics::counter!("worker_conversions_total", "outcome" => f.reason).increment(1);
                tracing::warn!(%portal, conversion = id, class = f.class.as_str(), reason = f.reason, status = ?f.status, detail = f.loggable_detail(), "delivery failed");
                if f.reason == "impact_auth" {
                    auth_failure = Some(f.detail.clone());
                }
                let r = if f.is_transient() {
                    Err(f)
                } else {
                    Ok(EventResult::Failed(f))
                };
                out.insert(id, r);
            }
        }
    }
    db::conversions::mark_delivered_many(&mut *tx, &delivered)
        .await
        .map_err(Failure::database)?;
    tx.commit().await.map_err(Failure::database)?;
    metrics::counter!("worker_conversions_total", "outcome" => "delivered")
        .increment(delivered.len() as u64);
    let known_ok = stored
        .as_ref()
        .is_some_and(|p| p.credentials_status == "ok");
    let status = match (&auth_failure, delivered.is_empty()) {
        (Some(detail), _) => Some(("failing", Some(detail.as_str()))),
        (None, false) if !known_ok => Some(("ok", None)),
        _ => None,
    };
    if let Some((status, detail)) = status
        && let Err(e) = db::portals::set_credentials_status(&w.pool, portal, status, detail).await
    {
        tracing::warn!(error = %e, "could not record credentials status");
    }
    tracing::debug!(%portal, delivered = delivered.len(), "conversions delivered");
    Ok(out)
}
