//! The operator bearer token, compared in constant time.

use axum::{
    extract::{Request, State},
    http::{StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use secrecy::ExposeSecret;
use subtle::ConstantTimeEq;

use super::AdminState;
use shared::http::ApiError;

/// Who is calling, for the audit log (`X-Operator` header, else `admin-api`).
#[derive(Debug, Clone)]
pub struct Operator(pub String);

/// Lets a request through only with `Authorization: Bearer <CONNECTOR_ADMIN_TOKEN>`.
pub async fn require_token(
    State(state): State<AdminState>,
    mut req: Request,
    next: Next,
) -> Response {
    let Some(expected) = &state.token else {
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            "admin_disabled",
            "the admin API is disabled: set CONNECTOR_ADMIN_TOKEN",
        )
        .into_response();
    };
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let ok: bool = given
        .as_bytes()
        .ct_eq(expected.expose_secret().as_bytes())
        .into();
    if !ok {
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "missing or wrong operator token (Authorization: Bearer ...)",
        )
        .into_response();
    }
    let who = req
        .headers()
        .get("x-operator")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 100)
        .map_or_else(|| "admin-api".to_owned(), |v| format!("admin:{v}"));
    req.extensions_mut().insert(Operator(who));
    next.run(req).await
}
