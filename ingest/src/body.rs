//! Reading a webhook body within its limits, before anything of it is
//! looked at: the largest size (`CONNECTOR_MAX_BODY_BYTES`, 413), the
//! bytes all webhooks in hand may hold together
//! (`CONNECTOR_MAX_BODY_BYTES_IN_FLIGHT`, 503 with `Retry-After`, which
//! HubSpot retries) and the gap between two pieces of the body
//! (`CONNECTOR_HTTP_BODY_TIMEOUT_SECS`, 408).
//!
//! The budget counts bytes as they arrive (a declared `Content-Length`
//! that does not fit what is left is refused before reading): a client
//! that declares a large body and sends it slowly holds only what it sent.

use std::sync::Arc;

use axum::{
    body::{Body, Bytes},
    http::{HeaderMap, StatusCode, header},
};
use bytes::BytesMut;
use http_body_util::BodyExt;
use shared::{http::ApiError, service::serve::is_body_timeout};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The bytes webhooks in hand may hold together.
#[derive(Clone)]
pub struct BodyBudget(Arc<Semaphore>);

/// A body read within the budget: its bytes count against it until this
/// is dropped.
pub struct HeldBody {
    /// The body.
    pub bytes: Bytes,
    _held: Option<OwnedSemaphorePermit>,
}

impl BodyBudget {
    /// A budget of `bytes`.
    pub fn new(bytes: usize) -> Self {
        Self(Arc::new(Semaphore::new(bytes.min(Semaphore::MAX_PERMITS))))
    }

    /// Bytes not held right now.
    pub fn available(&self) -> usize {
        self.0.available_permits()
    }

    /// Reads `body` (at most `limit` bytes) within the budget.
    pub async fn read(
        &self,
        headers: &HeaderMap,
        body: Body,
        limit: usize,
    ) -> Result<HeldBody, ApiError> {
        let declared = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > limit as u64) {
            return Err(too_large(limit));
        }
        if declared.is_some_and(|n| n > self.available() as u64) {
            return Err(over_budget());
        }
        let first = declared.map_or(0, |n| n as usize).min(16 * 1024);
        let mut buf = BytesMut::with_capacity(first);
        let mut held: Option<OwnedSemaphorePermit> = None;
        let mut body = body;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(unreadable)?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            if buf.len() + data.len() > limit {
                return Err(too_large(limit));
            }
            let n = u32::try_from(data.len()).map_err(|_| too_large(limit))?;
            let permit = self
                .0
                .clone()
                .try_acquire_many_owned(n)
                .map_err(|_| over_budget())?;
            match &mut held {
                Some(h) => h.merge(permit),
                None => held = Some(permit),
            }
            buf.extend_from_slice(&data);
        }
        Ok(HeldBody {
            bytes: buf.freeze(),
            _held: held,
        })
    }
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        format!("body exceeds {limit} bytes"),
    )
}

fn over_budget() -> ApiError {
    metrics::counter!("http_requests_shed_total", "listener" => "ingest", "reason" => "body_bytes")
        .increment(1);
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "overloaded",
        "too many webhook bytes in hand; retry later",
    )
}

fn unreadable(e: axum::Error) -> ApiError {
    if is_body_timeout(&e) {
        ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "body_timeout",
            "the body stopped arriving (CONNECTOR_HTTP_BODY_TIMEOUT_SECS)",
        )
    } else {
        ApiError::new(StatusCode::BAD_REQUEST, "unreadable_body", e.to_string())
    }
}
