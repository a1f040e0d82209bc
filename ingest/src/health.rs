//! Liveness, readiness and metrics.

use axum::{Json, extract::State, http::StatusCode, response::IntoResponse};
use serde_json::json;

use crate::AppState;

/// `GET /healthz`: the process is alive.
pub async fn healthz() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

/// `GET /readyz`: the broker is reachable, so webhooks can be accepted.
pub async fn readyz(State(state): State<AppState>) -> axum::response::Response {
    if state.publisher.is_ready().await {
        (
            StatusCode::OK,
            Json(json!({ "status": "ready", "broker": "connected" })),
        )
            .into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "not ready", "broker": "disconnected" })),
        )
            .into_response()
    }
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics() -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        shared::telemetry::metrics().render(),
    )
}
