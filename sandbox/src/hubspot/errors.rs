//! HubSpot's error bodies.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// A fresh correlation id, as HubSpot puts in every error.
pub(crate) fn correlation_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// `{"status":"error","message":..,"correlationId":..,"category":..,"context":..}`.
pub(crate) fn error(
    status: StatusCode,
    category: &str,
    message: impl Into<String>,
    context: Option<Value>,
) -> Response {
    let mut body = json!({
        "status": "error",
        "message": message.into(),
        "correlationId": correlation_id(),
        "category": category,
    });
    if let Some(ctx) = context {
        body["context"] = ctx;
    }
    (status, axum::Json(body)).into_response()
}

/// 401 for a missing or unknown token.
pub(crate) fn unauthenticated() -> Response {
    error(
        StatusCode::UNAUTHORIZED,
        "INVALID_AUTHENTICATION",
        "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find more \
         details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
        None,
    )
}

/// 401 for an OAuth access token past its expiry.
pub(crate) fn expired(minutes_ago: i64) -> Response {
    error(
        StatusCode::UNAUTHORIZED,
        "EXPIRED_AUTHENTICATION",
        format!("The OAuth token used to make this call expired {minutes_ago} minute(s) ago."),
        None,
    )
}

/// 403 for a token without the scope the call needs.
pub(crate) fn missing_scopes(required: &[String]) -> Response {
    let body = json!({
        "status": "error",
        "message": "This app hasn't been granted all required scopes to make this call. Read more about required \
                    scopes here: https://developers.hubspot.com/scopes.",
        "correlationId": correlation_id(),
        "errors": [{
            "message": "One or more of the following scopes are required.",
            "context": {"requiredGranularScopes": required},
        }],
        "links": {"scopes": "https://developers.hubspot.com/scopes"},
        "category": "MISSING_SCOPES",
    });
    (StatusCode::FORBIDDEN, axum::Json(body)).into_response()
}

/// 429 with HubSpot's body, field for field and in HubSpot's order.
pub(crate) fn rate_limited(policy: &str) -> Response {
    let limit = if policy == "SECONDLY" {
        "secondly"
    } else {
        "ten_secondly_rolling"
    };
    let body = format!(
        r#"{{"status":"error","message":"You have reached your {limit} limit.","errorType":"RATE_LIMIT","correlationId":"{}","policyName":"{policy}"}}"#,
        correlation_id()
    );
    let mut resp = (StatusCode::TOO_MANY_REQUESTS, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json;charset=utf-8"),
    );
    resp
}

/// 400 for a malformed request.
pub(crate) fn validation(message: impl Into<String>) -> Response {
    error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", message, None)
}

/// 404 for an unknown record.
pub(crate) fn not_found(id: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "OBJECT_NOT_FOUND",
        "resource not found",
        Some(json!({"id": [id]})),
    )
}
