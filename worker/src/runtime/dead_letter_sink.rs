//! Where messages given up on go: [`exhausted`] stores a message whose
//! retries are exhausted; the sink drains `{prefix}hubspot.dead` (poison messages cut
//! off by the work queue's delivery limit, malformed messages, anything
//! RabbitMQ dead-lettered, and the events of a delivery ingest could not
//! read, which it sends here itself) into the `dead_letters` table.

use std::time::Duration;

use domain::{
    events::decode_message,
    failure::{Failure, FailureReason},
};
use lapin::{
    message::Delivery,
    options::{BasicAckOptions, BasicNackOptions},
};
use shared::{
    broker::{Envelope, Topology},
    db::dead_letters::ReasonClass,
};
use tokio_util::sync::CancellationToken;

use super::side_queue::SideQueue;
use crate::{Worker, pipeline::dead_letter as store};

/// Drains the dead queue until `shutdown`, reconnecting when the broker goes away.
pub async fn run(w: Worker, amqp_url: String, topology: Topology, shutdown: CancellationToken) {
    let queue = SideQueue {
        name: "dead-letter-sink",
        amqp_url: &amqp_url,
        queue: topology.dead_queue(),
        topology: &topology,
    };
    queue
        .drain(&shutdown, |d| {
            let w = w.clone();
            async move {
                sink_one(&w, &d).await;
                Ok(())
            }
        })
        .await;
}

async fn sink_one(w: &Worker, d: &Delivery) {
    let (class, failure) = classify(d);
    let attempts = Envelope::read(d.properties.headers().as_ref())
        .delivery_count
        .unwrap_or(0);
    let message_id = d.properties.message_id().as_ref().map(|m| m.as_str());
    let settled = match store::message(w, class, &d.data, message_id, attempts, &failure).await {
        Ok(()) => d.acker.ack(BasicAckOptions::default()).await,
        Err(e) => {
            tracing::warn!(error = %e, "could not store a dead letter; will try again");
            tokio::time::sleep(Duration::from_secs(1)).await;
            d.acker
                .nack(BasicNackOptions {
                    requeue: true,
                    ..Default::default()
                })
                .await
        }
    };
    if let Err(e) = settled {
        tracing::warn!(error = %e, "could not settle a dead letter; it will be redelivered");
    }
}

/// Invalid (an event ingest could not read, with its problem), malformed
/// (the body is not events) or poison (cut off by the delivery limit, or
/// otherwise dead-lettered by RabbitMQ), with RabbitMQ's reason.
fn classify(d: &Delivery) -> (ReasonClass, Failure) {
    let envelope = Envelope::read(d.properties.headers().as_ref());
    if let Some(problem) = envelope.invalid {
        return (
            ReasonClass::Invalid,
            Failure::permanent(FailureReason::InvalidEvent, problem),
        );
    }
    if let Err(e) = decode_message(&d.data) {
        return (
            ReasonClass::Malformed,
            Failure::permanent(FailureReason::MalformedMessage, e.to_string()),
        );
    }
    let reason = envelope.death_reason.unwrap_or_else(|| "unknown".into());
    let detail = match reason.as_str() {
        "delivery_limit" => {
            "redelivered past the work queue's delivery limit (a crash or panic while processing)"
                .to_owned()
        }
        other => format!("dead-lettered by RabbitMQ ({other})"),
    };
    (
        ReasonClass::Poison,
        Failure::permanent(FailureReason::PoisonMessage, detail),
    )
}

/// A message whose retries are exhausted: stored with its last error and
/// acknowledged; when the store is unreachable, RabbitMQ dead-letters it
/// instead (the sink stores it later, without the error).
pub async fn exhausted(w: &Worker, d: &Delivery, attempt: u32, f: &Failure) -> lapin::Result<bool> {
    tracing::error!(
        attempt,
        reason = f.reason.as_str(),
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
