//! The dead-letter store's worker side: writing dead letters, the sink that
//! drains the dead queue, and the operator operations (list, show, replay,
//! discard) shared by the CLI and the admin HTTP API.

pub mod cli;
pub mod ops;
pub mod preview;
mod reevaluate;
pub mod replay;
mod replay_adjustment;
pub mod send;
pub mod sink;
pub mod store;

use domain::failure::Failure;
use lapin::{
    message::Delivery,
    options::{BasicAckOptions, BasicNackOptions},
};
use shared::db::dead_letters::ReasonClass;

use crate::Worker;

/// A message whose retries are exhausted: stored with its last error and
/// acknowledged; when the store is unreachable, RabbitMQ dead-letters it
/// instead (the sink stores it later, without the error).
pub async fn exhausted(w: &Worker, d: &Delivery, attempt: u32, f: &Failure) -> lapin::Result<bool> {
    tracing::error!(
        attempt,
        reason = f.reason,
        "retries exhausted; dead-lettered"
    );
    metrics::counter!("worker_messages_total", "outcome" => "dead_lettered").increment(1);
    let message_id = d.properties.message_id().as_ref().map(|m| m.as_str());
    match store::message(
        w,
        ReasonClass::Exhausted,
        &d.data,
        message_id,
        attempt + 1,
        f,
    )
    .await
    {
        Ok(()) => d.acker.ack(BasicAckOptions::default()).await,
        Err(e) => {
            tracing::warn!(error = %e, "dead-letter store unreachable; using the dead queue");
            d.acker
                .nack(BasicNackOptions {
                    requeue: false,
                    ..Default::default()
                })
                .await
        }
    }
}
