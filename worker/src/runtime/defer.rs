//! Deferring a message of a portal that holds enough already (see
//! [`super::fair`]): it goes to the deferred queue unchanged (same attempt
//! count, same headers) and comes back to the work queue after the first
//! retry delay, or sooner when a worker with room pulls it back
//! ([`super::pull_back`]).

use std::time::Duration;

use lapin::{message::Delivery, options::BasicAckOptions};
use shared::broker::{Envelope, OutgoingMessage, PublishError, Publisher, Topology};

/// Republishes `d` to the deferred queue and acks it. `Err(d)` when there
/// is no such queue (no retry schedule) or the broker refused: the caller
/// processes it instead.
pub async fn defer(
    topology: &Topology,
    publisher: &Publisher,
    d: Delivery,
) -> Result<(), Box<Delivery>> {
    let Some(queue) = topology.deferred_queue() else {
        return Err(Box::new(d));
    };
    let republished = republish(publisher, &d, &queue, |e| {
        e.deferred = e.deferred.saturating_add(1);
    });
    if let Err(e) = republished.await {
        tracing::warn!(error = %e, "deferral publish failed; processing the message now");
        return Err(Box::new(d));
    }
    metrics::counter!("worker_messages_total", "outcome" => "deferred").increment(1);
    if let Err(e) = d.acker.ack(BasicAckOptions::default()).await {
        // Redelivered later: processed then, or deferred again.
        tracing::warn!(error = %e, "could not ack a deferred message");
    }
    Ok(())
}

/// Publishes `d` again, confirmed, to `queue` (a step of the retry ladder,
/// whose expiry brings it back to the work queue) with its message id and
/// its envelope changed by `change`. The caller acknowledges `d` after.
pub(super) async fn republish(
    publisher: &Publisher,
    d: &Delivery,
    queue: &str,
    change: impl FnOnce(&mut Envelope),
) -> Result<(), PublishError> {
    let mut headers = d.properties.headers().clone().unwrap_or_default();
    let mut envelope = Envelope::read(Some(&headers));
    change(&mut envelope);
    envelope.write(&mut headers);
    let message_id = d
        .properties
        .message_id()
        .as_ref()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let msg = OutgoingMessage {
        exchange: "",
        routing_key: queue,
        body: &d.data,
        headers,
        message_id,
    };
    publisher.publish_all(&[msg], Duration::from_secs(5)).await
}
