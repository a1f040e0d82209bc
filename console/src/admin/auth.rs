//! The admin API's guard: a named operator token, failed attempts limited
//! per client and globally ([`crate::operators`]).

use axum::{
    extract::{Request, State},
    http::StatusCode,
    middleware::Next,
    response::{IntoResponse, Response},
};

use super::AdminState;
use crate::operators::{self, HOW_TO_ENABLE};
use shared::http::ApiError;

/// Who is calling, for the audit log: `admin:<token name>`, the name of the
/// operator token that authenticated the request (an `X-Operator` header is
/// ignored: it is only what the caller says).
#[derive(Debug, Clone)]
pub struct Operator(pub String);

/// Lets a request through only with `Authorization: Bearer <an operator token>`.
pub async fn require_token(
    State(state): State<AdminState>,
    mut req: Request,
    next: Next,
) -> Response {
    let auth = match &state.auth {
        Ok(a) => a,
        Err(why) => {
            return ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "admin_disabled",
                format!("the admin API is off: {why}"),
            )
            .into_response();
        }
    };
    let checked = auth.check(operators::peer(&req), operators::bearer(req.headers()));
    match checked {
        Ok(name) => {
            let who = Operator(format!("admin:{name}"));
            req.extensions_mut().insert(who);
            next.run(req).await
        }
        Err(refusal) => operators::refusal_response(refusal, "invalid_token"),
    }
}

/// Why the admin API is off when no operator token is set.
pub fn off_reason() -> String {
    format!("no operator token: {HOW_TO_ENABLE}")
}
