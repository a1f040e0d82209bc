//! `POST /webhooks/hubspot`: verify, validate, enqueue, answer.
//!
//! Trust is a type: a [`Delivery<Unverified>`] only becomes a
//! [`Delivery<Verified>`] through [`Delivery::verify`], only a verified
//! delivery yields [`VerifiedBatches`], and only those can be enqueued.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::{
    Json,
    body::{Body, Bytes},
    extract::{OriginalUri, State},
    http::{HeaderMap, StatusCode, header},
};
use domain::{
    events::{PayloadError, PortalBatch, parse_delivery},
    signature::{self, SignatureError, SignatureVersion, SignedRequest, Verifier},
};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde_json::{Value, json};
use shared::broker::{Envelope, OutgoingMessage, PublishError, Publisher};

use shared::http::ApiError;

use crate::AppState;

/// Marker: the signature has not been checked.
#[derive(Debug)]
pub struct Unverified;

/// Marker: the signature was checked with this version.
#[derive(Debug)]
pub struct Verified(pub SignatureVersion);

/// A webhook request as received.
#[derive(Debug)]
pub struct Delivery<S> {
    method: String,
    uri: String,
    headers: HeaderMap,
    body: Bytes,
    state: S,
}

/// Events of a verified, validated delivery, grouped per portal.
#[derive(Debug)]
pub struct VerifiedBatches(Vec<PortalBatch>);

impl VerifiedBatches {
    /// Total number of events.
    pub fn events(&self) -> usize {
        self.0.iter().map(|b| b.events).sum()
    }
}

impl Delivery<Unverified> {
    /// Wraps a raw request. `uri` is the full public URL HubSpot called.
    pub fn new(method: &str, uri: String, headers: HeaderMap, body: Bytes) -> Self {
        Self {
            method: method.to_owned(),
            uri,
            headers,
            body,
            state: Unverified,
        }
    }

    /// Checks the signature over the raw bytes at `now_ms`.
    pub fn verify(
        self,
        verifier: &Verifier,
        now_ms: u64,
    ) -> Result<Delivery<Verified>, SignatureError> {
        let h = |name: &str| self.headers.get(name).and_then(|v| v.to_str().ok());
        let req = SignedRequest {
            method: &self.method,
            uri: &self.uri,
            body: &self.body,
            signature: h(signature::HEADER_SIGNATURE),
            signature_version: h(signature::HEADER_SIGNATURE_VERSION),
            signature_v3: h(signature::HEADER_SIGNATURE_V3),
            timestamp: h(signature::HEADER_TIMESTAMP),
        };
        let version = verifier.verify(&req, now_ms)?;
        Ok(Delivery {
            method: self.method,
            uri: self.uri,
            headers: self.headers,
            body: self.body,
            state: Verified(version),
        })
    }
}

impl Delivery<Verified> {
    /// Validates the events; only a verified delivery gets this far.
    pub fn into_batches(self, max_events: usize) -> Result<VerifiedBatches, PayloadError> {
        parse_delivery(&self.body, max_events).map(VerifiedBatches)
    }

    /// The version the signature was checked with.
    pub fn version(&self) -> SignatureVersion {
        self.state.0
    }
}

/// Publishes every batch (one message per portal) and waits for all confirms.
pub async fn enqueue(
    publisher: &Publisher,
    exchange: &str,
    batches: &VerifiedBatches,
    timeout: std::time::Duration,
) -> Result<(), PublishError> {
    let received_at = now_ms();
    let keys: Vec<String> = batches
        .0
        .iter()
        .map(|b| format!("portal.{}", b.portal_id))
        .collect();
    let messages: Vec<OutgoingMessage<'_>> = batches
        .0
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
                exchange,
                routing_key: key,
                body: &b.body,
                headers: envelope.headers(),
                message_id: uuid::Uuid::new_v4().to_string(),
            }
        })
        .collect();
    publisher.publish_all(&messages, timeout).await
}

/// The handler.
pub async fn receive(
    State(state): State<AppState>,
    OriginalUri(original): OriginalUri,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let result = handle(&state, &original, headers, body).await;
    let outcome = match &result {
        Ok(_) => "accepted",
        Err(e) => match e.status {
            StatusCode::UNAUTHORIZED => "invalid_signature",
            StatusCode::PAYLOAD_TOO_LARGE => "body_too_large",
            StatusCode::SERVICE_UNAVAILABLE => "broker_unavailable",
            _ => "invalid_payload",
        },
    };
    metrics::counter!("ingest_requests_total", "outcome" => outcome).increment(1);
    result
}

async fn handle(
    state: &AppState,
    original: &axum::http::Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let body = read_limited(&headers, body, state.max_body_bytes).await?;
    let uri = public_uri(state.public_url.as_deref(), &headers, original);
    let delivery = Delivery::new("POST", uri, headers, body)
        .verify(&state.verifier, now_ms())
        .map_err(|e| ApiError::new(StatusCode::UNAUTHORIZED, e.code(), e.to_string()))?;
    let batches = delivery
        .into_batches(state.max_batch_events)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_payload", e.to_string()))?;
    let started = Instant::now();
    let published = enqueue(
        &state.publisher,
        &state.exchange,
        &batches,
        state.publish_timeout,
    )
    .await;
    metrics::histogram!("ingest_publish_duration_seconds").record(started.elapsed().as_secs_f64());
    if let Err(e) = published {
        tracing::warn!(error = %e, events = batches.events(), "could not enqueue; answering 503 so HubSpot retries");
        return Err(ApiError::internal(
            StatusCode::SERVICE_UNAVAILABLE,
            "broker_unavailable",
            "the events could not be queued; retry later",
            e,
        ));
    }
    metrics::counter!("ingest_events_accepted_total").increment(batches.events() as u64);
    Ok(Json(
        json!({ "status": "accepted", "events": batches.events() }),
    ))
}

/// Reads the body, refusing (413) as soon as it exceeds the limit, before
/// any parsing.
async fn read_limited(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("body exceeds {limit} bytes"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<LengthLimitError>() => Err(too_large()),
        Err(e) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "unreadable_body",
            e.to_string(),
        )),
    }
}

/// The URL HubSpot called: the configured public base URL (behind a proxy)
/// or `http://{Host}`, plus the path and query exactly as received.
fn public_uri(public_url: Option<&str>, headers: &HeaderMap, original: &axum::http::Uri) -> String {
    let path = original.path_and_query().map_or("/", |pq| pq.as_str());
    match public_url {
        Some(base) => format!("{base}{path}"),
        None => {
            let host = headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or("localhost");
            format!("http://{host}{path}")
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
