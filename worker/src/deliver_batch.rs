//! Deliveries of one message, batched: the conversions its events recorded
//! are locked together on one PostgreSQL connection, posted to impact.com
//! concurrently (bounded by `Worker::event_concurrency`, over the HTTP
//! client's kept-alive connections), and marked delivered in one statement.
//!
//! Posting one conversion per transaction holds a database connection for
//! impact.com's whole answer time (~50 ms): a pool of 48 would cap a worker
//! near 900 conversions/s. Batched, one connection serves a whole batch.
//!
//! Batching adds no wait: the first delivery of a message starts at once;
//! deliveries that arrive while a batch is being posted form the next batch
//! (opportunistic coalescing). The guarantees of [`crate::deliver`] hold:
//! rows stay locked (`FOR UPDATE`) from before the POST until the outcome is
//! committed, and a delivered row is never posted again.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use futures::StreamExt;
use shared::{db, events::PortalId, failure::Failure};
use tokio::sync::oneshot;

use crate::{Worker, pipeline::EventResult};

type Reply = oneshot::Sender<Result<EventResult, Failure>>;

tokio::task_local! {
    static BATCH: Arc<DeliveryBatch>;
}

/// Runs `f` with deliveries batched (see the module docs).
pub async fn scope<F: std::future::Future>(w: &Worker, f: F) -> F::Output {
    BATCH
        .scope(Arc::new(DeliveryBatch::new(w.clone())), f)
        .await
}

/// The batch of the running message, if any.
pub fn current() -> Option<Arc<DeliveryBatch>> {
    BATCH.try_with(Arc::clone).ok()
}

/// Deliveries waiting for the next batch.
pub struct DeliveryBatch {
    w: Worker,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    waiting: Vec<(PortalId, i64, Reply)>,
    flushing: bool,
}

impl DeliveryBatch {
    fn new(w: Worker) -> Self {
        Self {
            w,
            state: Mutex::default(),
        }
    }

    /// Delivers conversion `id` with the next batch.
    pub async fn deliver(&self, portal: PortalId, id: i64) -> Result<EventResult, Failure> {
        let (tx, rx) = oneshot::channel();
        let lead = {
            let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
            s.waiting.push((portal, id, tx));
            !std::mem::replace(&mut s.flushing, true)
        };
        if lead {
            // This caller posts batches until nothing waits any more.
            loop {
                let batch = {
                    let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
                    if s.waiting.is_empty() {
                        s.flushing = false;
                        break;
                    }
                    std::mem::take(&mut s.waiting)
                };
                self.flush(batch).await;
            }
        }
        rx.await.unwrap_or_else(|_| {
            Err(Failure::transient(
                "delivery_interrupted",
                "the delivery batch was interrupted",
            ))
        })
    }

    async fn flush(&self, batch: Vec<(PortalId, i64, Reply)>) {
        let started = std::time::Instant::now();
        metrics::histogram!("worker_delivery_batch_size").record(batch.len() as f64);
        let mut by_portal: HashMap<PortalId, Vec<(i64, Reply)>> = HashMap::new();
        for (portal, id, reply) in batch {
            by_portal.entry(portal).or_default().push((id, reply));
        }
        for (portal, items) in by_portal {
            let ids: Vec<i64> = items.iter().map(|(id, _)| *id).collect();
            let mut results = match self.portal_batch(portal, &ids).await {
                Ok(r) => r,
                Err(f) => ids.iter().map(|id| (*id, Err(f.clone()))).collect(),
            };
            for (id, reply) in items {
                let r = results
                    .remove(&id)
                    .unwrap_or(Ok(EventResult::AlreadyDelivered { conversion_id: id }));
                let _ = reply.send(r);
            }
        }
        metrics::histogram!("worker_delivery_batch_seconds")
            .record(started.elapsed().as_secs_f64());
    }

    /// One transaction: lock, post, record the outcomes, commit.
    async fn portal_batch(
        &self,
        portal: PortalId,
        ids: &[i64],
    ) -> Result<HashMap<i64, Result<EventResult, Failure>>, Failure> {
        let w = &self.w;
        let stored = w
            .portals
            .get(&w.pool, &w.cipher, portal)
            .await
            .map_err(Failure::database)?;
        let creds = stored
            .as_ref()
            .and_then(|p| crate::deliver::impact_credentials(p));
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
                db::conversions::mark_attempt_failed(&mut *tx, row.id, true, f.reason, &f.detail)
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
            .buffer_unordered(w.event_concurrency)
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
                    db::conversions::mark_attempt_failed(
                        &mut *tx,
                        id,
                        !f.is_transient(),
                        f.reason,
                        &f.detail,
                    )
                    .await
                    .map_err(Failure::database)?;
                    metrics::counter!("worker_conversions_total", "outcome" => f.reason)
                        .increment(1);
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
            && let Err(e) =
                db::portals::set_credentials_status(&w.pool, portal, status, detail).await
        {
            tracing::warn!(error = %e, "could not record credentials status");
        }
        tracing::debug!(%portal, delivered = delivered.len(), "conversions delivered");
        Ok(out)
    }
}
