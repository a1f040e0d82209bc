//! The worker's record batcher: outcomes waiting for the next commit,
//! committed by whichever caller arrives while fewer than
//! [`MAX_COMMITTING`] batches are being committed.

use std::sync::Arc;

use domain::failure::Failure;
use shared::db::delivery_lease::{LeaseTimes, NewLease};
use sqlx::PgPool;
use tokio::sync::oneshot;

use super::write::{Item, Recorded, write};
use crate::pipeline::{batching::Batching, coalesce::Coalescer};

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
    /// The delivery lease each created conversion row is written with.
    lease: LeaseTimes,
    waiting: Coalescer<(Item, Reply)>,
}

impl RecordBatch {
    /// A batcher writing to `pool`; the conversion rows it creates are
    /// leased for `lease` (their delivery adopts the lease).
    pub fn new(pool: PgPool, lease: LeaseTimes) -> Self {
        Self {
            pool,
            lease,
            waiting: Coalescer::new(MAX_COMMITTING),
        }
    }

    fn new_lease(&self) -> NewLease {
        NewLease::new(self.lease)
    }

    /// Records `item` with the batch of `batching`.
    pub(super) async fn record(
        self: &Arc<Self>,
        batching: Batching,
        item: Item,
    ) -> Result<Recorded, RecordError> {
        if batching == Batching::Alone {
            // Boxed: the transaction's future is ~13 KB, and every stage
            // that may record an outcome would carry it inline, to be
            // copied with each event's future (live traffic never takes
            // this path).
            let lease = self.new_lease();
            let mut recorded =
                Box::pin(write(&self.pool, std::slice::from_ref(&item), &lease)).await?;
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
        match write(&self.pool, &items, &self.new_lease()).await {
            Ok(recorded) => {
                for (reply, r) in replies.into_iter().zip(recorded) {
                    let _ = reply.send(Ok(r));
                }
            }
            Err(e) if items.len() > 1 => {
                failed(&e, items.len());
                for (item, reply) in items.iter().zip(replies) {
                    let r = write(&self.pool, std::slice::from_ref(item), &self.new_lease())
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
