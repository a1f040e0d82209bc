//! Extractors whose refusals are JSON errors like every other answer of the
//! JSON API and the admin API (axum's own answer a malformed body or path
//! with plain text).

use axum::{
    extract::{
        FromRequest, FromRequestParts,
        rejection::{JsonRejection, PathRejection},
    },
    response::{IntoResponse, Response},
};

use shared::http::ApiError;

/// `axum::Json`, refusing with `{"error":"invalid_body",...}`.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(Refused))]
pub struct ApiJson<T>(pub T);

/// `axum::extract::Path`, refusing with `{"error":"invalid_path",...}`.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(Refused))]
pub struct ApiPath<T>(pub T);

/// A refused request: the rejection's status, a JSON error body.
pub struct Refused(ApiError);

impl From<JsonRejection> for Refused {
    fn from(r: JsonRejection) -> Self {
        Self(ApiError::new(r.status(), "invalid_body", r.body_text()))
    }
}

impl From<PathRejection> for Refused {
    fn from(r: PathRejection) -> Self {
        Self(ApiError::new(r.status(), "invalid_path", r.body_text()))
    }
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        self.0.into_response()
    }
}
