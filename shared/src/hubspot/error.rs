//! HubSpot API errors and their classification.

use std::time::Duration;

use domain::failure::{Failure, FailureReason, truncate};

/// What went wrong calling HubSpot.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HubSpotError {
    /// 404: the record was deleted (or archived), or never existed.
    #[error("HubSpot object not found (deleted or archived)")]
    NotFound,
    /// 401: the token is invalid or expired.
    #[error("HubSpot refused the access token (401): {0}")]
    Unauthorized(String),
    /// 429: over a rate limit.
    #[error("HubSpot rate limit {policy}: retry in {retry_after:?}")]
    RateLimited {
        /// `TEN_SECONDLY_ROLLING`, `DAILY`, ...
        policy: String,
        /// How long to wait.
        retry_after: Duration,
    },
    /// Another 4xx (missing scopes, bad request): retrying will not help.
    #[error("HubSpot refused the request ({status}): {body}")]
    Rejected {
        /// HTTP status.
        status: u16,
        /// The answer (truncated).
        body: String,
    },
    /// 5xx, timeout or connection failure.
    #[error("HubSpot unavailable: {0}")]
    Unavailable(String),
    /// A 2xx answer that does not have the documented shape.
    #[error("unexpected HubSpot answer: {0}")]
    Decode(String),
    /// An answer over its size cap, or more pages than a record may have:
    /// retrying would only read it again.
    #[error("HubSpot answer refused: {0}")]
    TooLarge(String),
}

impl HubSpotError {
    /// A body that could not be read whole (`endpoint`: what was called).
    pub(super) fn from_read(endpoint: &str, e: crate::upstream::ReadError) -> Self {
        match e {
            crate::upstream::ReadError::TooLarge { .. } => {
                Self::TooLarge(format!("{endpoint}: {e}"))
            }
            crate::upstream::ReadError::Transport(t) => Self::Unavailable(t),
        }
    }

    /// Reads an error answer (a 3xx is named as a redirect not followed).
    pub(super) async fn from_response(resp: reqwest::Response) -> Self {
        let status = resp.status().as_u16();
        if resp.status().is_redirection() {
            return Self::Rejected {
                status,
                body: crate::upstream::redirect_message("HubSpot", &resp),
            };
        }
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let retry_after_header = header("retry-after").and_then(|v| v.trim().parse::<u64>().ok());
        let interval_ms = header("x-hubspot-ratelimit-interval-milliseconds")
            .and_then(|v| v.trim().parse::<u64>().ok());
        let body = crate::upstream::error_text(resp).await;
        match status {
            404 => Self::NotFound,
            401 => Self::Unauthorized(truncate(&body, 500)),
            429 => {
                let policy = serde_json::from_str::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v.get("policyName")?.as_str().map(str::to_owned))
                    .unwrap_or_else(|| "UNKNOWN".into());
                let retry_after = match (retry_after_header, policy.as_str()) {
                    (Some(s), _) => Duration::from_secs(s),
                    // The daily limit resets at the account's midnight; an
                    // hour is a safe re-check interval without knowing its zone.
                    (None, "DAILY") => Duration::from_secs(3600),
                    (None, _) => Duration::from_millis(interval_ms.unwrap_or(10_000)),
                };
                Self::RateLimited {
                    policy,
                    retry_after,
                }
            }
            500..=599 => Self::Unavailable(format!("{status}: {}", truncate(&body, 500))),
            _ => Self::Rejected {
                status,
                body: truncate(&body, 1000),
            },
        }
    }

    /// Transient or permanent, with a reason code.
    pub fn failure(&self) -> Failure {
        let detail = self.to_string();
        match self {
            Self::NotFound => {
                Failure::permanent(FailureReason::ObjectDeleted, detail).with_status(404)
            }
            // A refreshed token (or a fixed private-app token) may succeed:
            // retry, bounded by the delivery limit.
            Self::Unauthorized(_) => Failure::transient(FailureReason::HubspotAuth, detail),
            Self::RateLimited { retry_after, .. } => Failure {
                retry_after: Some(*retry_after),
                status: Some(429),
                ..Failure::transient(FailureReason::HubspotRateLimited, detail)
            },
            Self::Rejected { status, .. } => {
                Failure::permanent(FailureReason::HubspotRejected, detail).with_status(*status)
            }
            Self::TooLarge(_) => Failure::permanent(FailureReason::HubspotRejected, detail),
            Self::Unavailable(_) | Self::Decode(_) => {
                Failure::transient(FailureReason::HubspotUnavailable, detail)
            }
        }
    }
}

/// A transport error with its causes (URLs carry no secrets: tokens travel in headers).
pub fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    let mut text = format!("{kind}: {e}");
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text
}
