//! JSON error answers of the HTTP services (ingest, the console): every
//! refusal says what was wrong, as `{"error": code, "message": ...}`.

use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;

/// An error answer: status, a stable machine-readable code and a message.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable code, e.g. `invalid_signature`.
    pub code: &'static str,
    /// Human-readable explanation.
    pub message: String,
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    message: &'a str,
}

impl ApiError {
    /// Builds an error.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    /// An error whose cause must not reach the caller (a database or
    /// broker failure, a configuration problem): `detail` goes to the log
    /// under a fresh correlation id, and the answer says `public` and
    /// that id, which an operator finds in the log.
    pub fn internal(
        status: StatusCode,
        code: &'static str,
        public: &str,
        detail: impl std::fmt::Display,
    ) -> Self {
        let id = logged(code, detail);
        Self::new(status, code, format!("{public} (reference {id})"))
    }
}

/// A fresh correlation id: 12 hex digits, enough to find one log line.
pub fn correlation_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_owned()
}

/// Logs `detail` (an error a visitor must not see) under a fresh
/// correlation id, and returns the id for the answer.
pub fn logged(what: &str, detail: impl std::fmt::Display) -> String {
    let id = correlation_id();
    tracing::error!(correlation_id = %id, what, error = %detail, "request failed");
    id
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = (
            self.status,
            Json(Body {
                error: self.code,
                message: &self.message,
            }),
        )
            .into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            // HubSpot retries on its own schedule; other clients get a hint.
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        resp
    }
}
