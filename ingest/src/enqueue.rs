//! Publishing a verified delivery: one message per portal to the events
//! exchange, and each invalid event to the dead queue (the worker's
//! dead-letter sink stores it as `invalid`), all confirmed before ingest
//! answers.

use domain::events::ParsedDelivery;
use shared::broker::{Envelope, OutgoingMessage, PublishError};

use crate::AppState;

/// Publishes everything of a verified delivery `d` (accepted at
/// `received_at`, epoch milliseconds) and waits for every confirm.
pub async fn enqueue(
    state: &AppState,
    d: &ParsedDelivery,
    received_at: u64,
) -> Result<(), PublishError> {
    let keys: Vec<String> = d
        .batches
        .iter()
        .map(|b| format!("portal.{}", b.portal_id))
        .collect();
    let mut messages: Vec<OutgoingMessage<'_>> = d
        .batches
        .iter()
        .zip(&keys)
        .map(|(b, key)| {
            let envelope = Envelope {
                portal: Some(b.portal_id.0),
                event_count: Some(b.events as u64),
                received_at_ms: Some(received_at),
                ..Envelope::default()
            };
            OutgoingMessage {
                exchange: &state.exchange,
                routing_key: key,
                body: &b.body,
                headers: envelope.headers(),
                message_id: uuid::Uuid::new_v4().to_string(),
            }
        })
        .collect();
    for bad in &d.invalid {
        let envelope = Envelope {
            portal: bad.portal_id.map(|p| p.0),
            event_count: Some(1),
            received_at_ms: Some(received_at),
            invalid: Some(bad.problem.clone()),
            ..Envelope::default()
        };
        messages.push(OutgoingMessage {
            // The default exchange routes straight to the named queue.
            exchange: "",
            routing_key: &state.dead_queue,
            body: &bad.body,
            headers: envelope.headers(),
            message_id: uuid::Uuid::new_v4().to_string(),
        });
    }
    if messages.is_empty() {
        return Ok(());
    }
    state
        .publisher
        .publish_all(&messages, state.publish_timeout)
        .await
}
