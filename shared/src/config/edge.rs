//! The limits of the HTTP listeners (ingest's webhook edge, the console's
//! website and admin API): timeouts, connection and request caps, and the
//! webhook bytes ingest holds at once. Flattened into [`Settings`], so
//! each is a `CONNECTOR_*` variable like the others.

use serde::{Deserialize, Serialize};

use super::{ConfigError, lenient};

/// The listeners' limits (`CONNECTOR_HTTP_*`, `CONNECTOR_MAX_BODY_BYTES_IN_FLIGHT`).
#[derive(Debug, Clone, Deserialize)]
pub struct EdgeSettings {
    /// Seconds a client has to send a request's headers, from the
    /// connection's start or the previous answer: also how long an idle
    /// connection is kept open.
    #[serde(deserialize_with = "lenient")]
    pub http_header_timeout_secs: u64,
    /// Longest wait, in seconds, for the next piece of a request body.
    #[serde(deserialize_with = "lenient")]
    pub http_body_timeout_secs: u64,
    /// Deadline of a request, in seconds, from its headers to its answer.
    #[serde(deserialize_with = "lenient")]
    pub http_request_timeout_secs: u64,
    /// Seconds after which a kept-alive connection is closed, once its
    /// current answer is sent.
    #[serde(deserialize_with = "lenient")]
    pub http_keep_alive_max_secs: u64,
    /// Connections a listener holds open; more wait to be accepted.
    #[serde(deserialize_with = "lenient")]
    pub http_max_connections: usize,
    /// Requests a listener works on at once; more are answered 503.
    #[serde(deserialize_with = "lenient")]
    pub http_max_requests: usize,
    /// Webhook body bytes ingest holds at once (being read or enqueued);
    /// past it a webhook is answered 503 with `Retry-After`.
    #[serde(deserialize_with = "lenient")]
    pub max_body_bytes_in_flight: usize,
}

/// The defaults of [`EdgeSettings`].
#[derive(Serialize)]
pub(super) struct EdgeDefaults {
    http_header_timeout_secs: u64,
    http_body_timeout_secs: u64,
    http_request_timeout_secs: u64,
    http_keep_alive_max_secs: u64,
    http_max_connections: usize,
    http_max_requests: usize,
    max_body_bytes_in_flight: usize,
}

pub(super) const EDGE_DEFAULTS: EdgeDefaults = EdgeDefaults {
    http_header_timeout_secs: 10,
    http_body_timeout_secs: 10,
    http_request_timeout_secs: 30,
    http_keep_alive_max_secs: 300,
    http_max_connections: 4096,
    http_max_requests: 1024,
    max_body_bytes_in_flight: 64 << 20,
};

impl EdgeSettings {
    /// Every limit must be positive.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (name, value) in [
            (
                "CONNECTOR_HTTP_HEADER_TIMEOUT_SECS",
                self.http_header_timeout_secs,
            ),
            (
                "CONNECTOR_HTTP_BODY_TIMEOUT_SECS",
                self.http_body_timeout_secs,
            ),
            (
                "CONNECTOR_HTTP_REQUEST_TIMEOUT_SECS",
                self.http_request_timeout_secs,
            ),
            (
                "CONNECTOR_HTTP_KEEP_ALIVE_MAX_SECS",
                self.http_keep_alive_max_secs,
            ),
            (
                "CONNECTOR_HTTP_MAX_CONNECTIONS",
                self.http_max_connections as u64,
            ),
            ("CONNECTOR_HTTP_MAX_REQUESTS", self.http_max_requests as u64),
        ] {
            if value == 0 {
                return Err(ConfigError::Invalid {
                    name,
                    problem: "must be at least 1".into(),
                });
            }
        }
        Ok(())
    }

    /// What ingest needs besides: room for one body of the largest size,
    /// and a deadline longer than the wait for the broker.
    pub fn validate_ingest(
        &self,
        max_body_bytes: usize,
        publish_timeout_ms: u64,
    ) -> Result<(), ConfigError> {
        self.validate()?;
        if self.max_body_bytes_in_flight < max_body_bytes {
            return Err(ConfigError::Invalid {
                name: "CONNECTOR_MAX_BODY_BYTES_IN_FLIGHT",
                problem: format!(
                    "must be at least CONNECTOR_MAX_BODY_BYTES ({max_body_bytes}), \
                     or the largest webhooks could never be taken"
                ),
            });
        }
        if self.http_request_timeout_secs.saturating_mul(1000) <= publish_timeout_ms {
            return Err(ConfigError::Invalid {
                name: "CONNECTOR_HTTP_REQUEST_TIMEOUT_SECS",
                problem: format!(
                    "must be longer than CONNECTOR_PUBLISH_TIMEOUT_MS ({publish_timeout_ms} ms)"
                ),
            });
        }
        Ok(())
    }
}
