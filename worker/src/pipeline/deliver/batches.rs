//! The worker's delivery batches, one per portal: deliveries of the
//! worker's messages that arrive while fewer than [`MAX_FLUSHING`] batches
//! of their portal are being posted wait for the next one; otherwise one
//! starts at once. Portals never wait on each other's batches.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use domain::{
    events::PortalId,
    failure::{Failure, FailureReason},
};
use shared::db::delivery_lease::Adopted;
use tokio::sync::oneshot;

use crate::pipeline::{coalesce::Coalescer, result::EventResult};

type Reply = oneshot::Sender<Result<EventResult, Failure>>;

/// Each conversion's result, by id.
pub type Results = HashMap<i64, Result<EventResult, Failure>>;

/// A conversion to deliver, with the lease its recording took on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// The conversion row.
    pub id: i64,
    /// The lease written on the row when it was created, to adopt.
    pub adopted: Option<Adopted>,
    /// The parameters the row was created with, by this worker, under the
    /// adopted lease: posted without reading the row back (see
    /// `deliver::read_pending`).
    pub created_with: Option<Vec<(String, String)>>,
}

/// Batches of one portal being posted at once, at most.
pub const MAX_FLUSHING: usize = 2;

/// The delivery batches of a worker, one per portal.
#[derive(Default)]
pub struct DeliveryBatches {
    portals: Mutex<HashMap<PortalId, Arc<DeliveryBatch>>>,
}

impl DeliveryBatches {
    /// Delivers `claim` of `portal` with the portal's next batch; `flush`
    /// posts a batch (when this call leads one).
    pub async fn deliver<F, Fut>(
        &self,
        portal: PortalId,
        claim: Claim,
        flush: F,
    ) -> Result<EventResult, Failure>
    where
        F: Fn(Vec<Claim>) -> Fut + Send + 'static,
        Fut: Future<Output = Results> + Send,
    {
        let batch = {
            let mut portals = self.portals.lock().unwrap_or_else(|e| e.into_inner());
            Arc::clone(portals.entry(portal).or_default())
        };
        batch.deliver(claim, flush).await
    }
}

/// Deliveries of one portal waiting for the next batch.
pub struct DeliveryBatch {
    waiting: Coalescer<(Claim, Reply)>,
}

impl Default for DeliveryBatch {
    fn default() -> Self {
        Self {
            waiting: Coalescer::new(MAX_FLUSHING),
        }
    }
}

impl DeliveryBatch {
    async fn deliver<F, Fut>(
        self: Arc<Self>,
        claim: Claim,
        flush: F,
    ) -> Result<EventResult, Failure>
    where
        F: Fn(Vec<Claim>) -> Fut + Send + 'static,
        Fut: Future<Output = Results> + Send,
    {
        let (tx, rx) = oneshot::channel();
        if self.waiting.push((claim, tx)) {
            // A task of its own: no caller waits on others' batches after
            // its own result is in.
            tokio::spawn(async move { self.lead(flush).await });
        }
        rx.await.unwrap_or_else(|_| {
            Err(Failure::transient(
                FailureReason::DeliveryInterrupted,
                "the delivery batch was interrupted",
            ))
        })
    }

    /// Posts batches until none waits, answering their callers.
    async fn lead<F, Fut>(&self, flush: F)
    where
        F: Fn(Vec<Claim>) -> Fut,
        Fut: Future<Output = Results>,
    {
        while let Some(items) = self.waiting.next_batch() {
            let started = std::time::Instant::now();
            metrics::histogram!("worker_delivery_batch_size").record(items.len() as f64);
            let (claims, replies): (Vec<Claim>, Vec<Reply>) = items.into_iter().unzip();
            let ids: Vec<i64> = claims.iter().map(|c| c.id).collect();
            let mut results = flush(claims).await;
            for (id, reply) in ids.into_iter().zip(replies) {
                let r = results
                    .remove(&id)
                    .unwrap_or(Ok(EventResult::AlreadyDelivered { conversion_id: id }));
                let _ = reply.send(r);
            }
            metrics::histogram!("worker_delivery_batch_seconds")
                .record(started.elapsed().as_secs_f64());
        }
    }
}
