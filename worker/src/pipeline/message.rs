//! One queued message (a JSON array of events, or one event) → its outcome.
//! This is the single step tests drive deterministically.

use domain::{events::decode_message, failure::Failure};
use lapin::BasicProperties;
use shared::{broker::Envelope, db};

use crate::{
    Worker,
    pipeline::{EventResult, concurrent::process_all, fetch::prefetch::prefetch},
};

/// What the consumer needs from a message's headers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MessageMeta {
    /// When ingest accepted the webhook (epoch milliseconds).
    pub received_at_ms: Option<u64>,
    /// Retries so far (our own header; 0 on first delivery).
    pub attempt: u32,
}

impl MessageMeta {
    /// Reads the headers set by ingest and by the retry path.
    pub fn from_properties(props: &BasicProperties) -> Self {
        Self::from(&Envelope::read(props.headers().as_ref()))
    }
}

impl From<&Envelope> for MessageMeta {
    fn from(e: &Envelope) -> Self {
        Self {
            received_at_ms: e.received_at_ms,
            attempt: e.attempt,
        }
    }
}

/// The outcome of a whole message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageOutcome {
    /// Every event's outcome is committed: ack.
    Done(Vec<EventResult>),
    /// An event failed transiently: retry the message later (events already
    /// finished are recognised as duplicates then).
    Retry(Failure),
    /// The body is not events: dead-letter it as is.
    Malformed(String),
}

/// Processes every event of a message (concurrently across objects, in
/// order per object). After a transient failure no further event starts
/// (the following ones likely share its cause).
pub async fn process_message(w: &Worker, body: &[u8], meta: MessageMeta) -> MessageOutcome {
    let events = match decode_message(body) {
        Ok(e) => e,
        Err(e) => {
            metrics::counter!("worker_messages_total", "outcome" => "malformed").increment(1);
            return MessageOutcome::Malformed(e.to_string());
        }
    };
    let received_at = meta.received_at_ms.and_then(db::from_epoch_ms);
    if let Some(at) = received_at {
        // How long events waited between ingest's 200 and a worker: the
        // queue's age, for alerts on a backlog.
        let age = (chrono::Utc::now() - at).num_milliseconds().max(0) as f64 / 1000.0;
        metrics::histogram!("worker_event_age_seconds").record(age);
    }
    let started = std::time::Instant::now();
    let prefetched = prefetch(w, &events).await;
    metrics::histogram!("worker_prefetch_seconds").record(started.elapsed().as_secs_f64());
    if let Some(f) = &prefetched.failure {
        metrics::counter!("worker_messages_total", "outcome" => "retry").increment(1);
        tracing::warn!(reason = f.reason.as_str(), status = ?f.status, attempt = meta.attempt,
            "HubSpot batch read failed; the message will be retried");
        return MessageOutcome::Retry(f.clone());
    }
    let (done, failure) = process_all(w, &events, received_at, &prefetched).await;
    let mut results = Vec::with_capacity(done.len());
    for (i, r) in done {
        let event = &events[i];
        count(&r);
        tracing::debug!(portal = %event.portal_id, object = event.object_id,
            kind = %event.subscription_type, outcome = r.label(), "event processed");
        results.push(r);
    }
    if let Some((i, f)) = failure {
        let event = &events[i];
        metrics::counter!("worker_events_total", "outcome" => "retry", "reason" => f.reason.as_str())
            .increment(1);
        tracing::warn!(portal = %event.portal_id, object = event.object_id,
            reason = f.reason.as_str(), status = ?f.status, detail = f.loggable_detail(), attempt = meta.attempt,
            "transient failure; the message will be retried");
        metrics::counter!("worker_messages_total", "outcome" => "retry").increment(1);
        return MessageOutcome::Retry(f);
    }
    metrics::counter!("worker_messages_total", "outcome" => "done").increment(1);
    MessageOutcome::Done(results)
}

fn count(r: &EventResult) {
    metrics::counter!("worker_events_total", "outcome" => r.label(), "reason" => r.reason())
        .increment(1);
}
