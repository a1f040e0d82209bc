//! `POST /webhooks/hubspot`: verify, read, enqueue, answer.
//!
//! Trust is a type: a [`Delivery<Unverified>`] only becomes a
//! [`Delivery<Verified>`] through [`Delivery::verify`], only a verified
//! delivery yields [`VerifiedBatches`], and only those can be enqueued.
//! The key is the delivery's portal's own secret when it has one (read from
//! memory, see [`crate::secrets`]), else the default secret.
//!
//! A delivery is refused (400) only when it is not a JSON array of objects;
//! each event is then queued, ignored (a kind the pipeline has no use for)
//! or sent to the dead queue as `invalid` (a kind it reads, but unreadable),
//! all under publisher confirms before the 200.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::{
    Json,
    body::{Body, Bytes},
    extract::{OriginalUri, State},
    http::{HeaderMap, StatusCode, header},
};
use domain::{
    events::{ParsedDelivery, PayloadError, ReadDelivery, parse_delivery, read_delivery},
    signature::{self, SignatureError, SignatureVersion, SignedRequest, Verifier},
};
use serde_json::{Value, json};

use shared::http::ApiError;

use crate::{AppState, enqueue::enqueue, secrets::NoKey};

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

/// The events of a verified delivery: queued ones grouped per portal,
/// invalid and ignored ones aside.
#[derive(Debug)]
pub struct VerifiedBatches(pub(crate) ParsedDelivery);

impl VerifiedBatches {
    /// Events queued for the worker.
    pub fn events(&self) -> usize {
        self.0.queued()
    }

    /// Events kept as `invalid` dead letters.
    pub fn invalid(&self) -> usize {
        self.0.invalid.len()
    }

    /// Events ignored.
    pub fn ignored(&self) -> usize {
        self.0.ignored.len()
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
    /// Validates the events; only a verified delivery gets this far. `read`:
    /// the body as read before the signature was checked (to pick its key),
    /// if it was.
    pub fn into_batches(
        self,
        read: Option<Result<ReadDelivery<'_>, PayloadError>>,
        max_events: usize,
    ) -> Result<VerifiedBatches, PayloadError> {
        match read {
            Some(read) => read.map(ReadDelivery::finish),
            None => parse_delivery(&self.body, max_events),
        }
        .map(VerifiedBatches)
    }

    /// The version the signature was checked with.
    pub fn version(&self) -> SignatureVersion {
        self.state.0
    }
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
        Err(e) => match (e.status, e.code) {
            (StatusCode::UNAUTHORIZED, _) => "invalid_signature",
            (StatusCode::PAYLOAD_TOO_LARGE, _) => "body_too_large",
            (_, "overloaded") => "overloaded",
            (_, "body_timeout") => "body_timeout",
            (StatusCode::SERVICE_UNAVAILABLE, _) => "broker_unavailable",
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
    // Held (against the bytes budget) until the answer.
    let held = state
        .body_budget
        .read(&headers, body, state.max_body_bytes)
        .await?;
    let body = held.bytes.clone();
    let uri = public_uri(state.public_url.as_deref(), &headers, original);
    // Only when some portal has a secret of its own is the (untrusted)
    // body read before the signature is checked: to pick the key. Nothing
    // of it is used until the signature holds (a refusal of the body too).
    let early = state
        .secrets
        .has_portal_keys()
        .then(|| read_delivery(&body, state.max_batch_events));
    let portal = early
        .as_ref()
        .and_then(|r| r.as_ref().ok())
        .and_then(ReadDelivery::portal);
    let verifier = state.secrets.key_for(portal).map_err(no_key)?;
    let delivery = Delivery::new("POST", uri, headers, body.clone())
        .verify(&verifier, now_ms())
        .map_err(|e| ApiError::new(StatusCode::UNAUTHORIZED, e.code(), e.to_string()))?;
    let batches = delivery
        .into_batches(early, state.max_batch_events)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_payload", e.to_string()))?;
    note_odd_events(&batches.0);
    let started = Instant::now();
    let published = enqueue(state, &batches.0, now_ms()).await;
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
    metrics::counter!("ingest_events_invalid_total").increment(batches.invalid() as u64);
    Ok(Json(json!({
        "status": "accepted",
        "events": batches.events(),
        "invalid": batches.invalid(),
        "ignored": batches.ignored(),
    })))
}

/// The 401 of a delivery no key can check (no value of any secret in it).
fn no_key(e: NoKey) -> ApiError {
    let message = match e {
        NoKey::Unreadable(portal) => {
            tracing::warn!(%portal, "webhook refused: the portal's webhook secret cannot be read");
            "the webhook secret of this delivery's portal cannot be read by the connector (see its log)"
                .to_owned()
        }
        NoKey::Unknown => "no webhook secret to verify this delivery with".to_owned(),
    };
    ApiError::new(StatusCode::UNAUTHORIZED, "invalid_signature", message)
}

/// Logs and counts what a delivery held besides readable events (their
/// contents are not logged: they stay in the dead letter).
fn note_odd_events(d: &ParsedDelivery) {
    for why in &d.ignored {
        metrics::counter!("ingest_events_ignored_total", "reason" => why.as_str()).increment(1);
    }
    for e in &d.invalid {
        tracing::warn!(portal = ?e.portal_id.map(|p| p.0), index = e.index,
            "unreadable event kept as an invalid dead letter");
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
