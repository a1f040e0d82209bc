//! The admin HTTP API under `/admin/api/...`: the dead-letter store's list,
//! show, replay and discard for operators, behind a bearer token
//! (`CONNECTOR_ADMIN_TOKEN`). Its database pool connects lazily, on the
//! first admin request: the webhook path never touches the database.

mod auth;
mod handlers;

use std::sync::Arc;

use axum::{
    Router, middleware,
    routing::{get, post},
};
use secrecy::SecretString;
use shared::config::Settings;
use worker::Worker;

/// What the admin routes share. Cheap to clone.
#[derive(Clone, Default)]
pub struct AdminState {
    /// The operator token; `None`: the admin API is disabled (401).
    token: Option<Arc<SecretString>>,
    /// The worker's state on a lazy pool; `Err`: why the store is unavailable (503).
    worker: Option<Result<Worker, Arc<str>>>,
    /// Bulk replays per second.
    replay_rate: u32,
}

impl AdminState {
    /// No admin API: every route answers 401.
    pub fn disabled() -> Self {
        Self::default()
    }

    /// From the settings: enabled when `CONNECTOR_ADMIN_TOKEN` is set; the
    /// database (`CONNECTOR_DATABASE_URL`) is connected on first use.
    pub fn from_settings(settings: &Settings) -> Self {
        let Some(token) = settings.admin_token.clone() else {
            return Self::disabled();
        };
        let worker = sqlx::postgres::PgPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(std::time::Duration::from_secs(5))
            .connect_lazy(&settings.database_url)
            .map_err(|e| format!("CONNECTOR_DATABASE_URL: {e}"))
            .and_then(|pool| Worker::new(settings, pool).map_err(|e| format!("{e:#}")))
            .map_err(Arc::from);
        Self {
            token: Some(Arc::new(token)),
            worker: Some(worker),
            replay_rate: settings.replay_rate_per_sec,
        }
    }

    /// For tests: an enabled API on an existing worker state.
    pub fn with_worker(token: &str, worker: Worker, replay_rate: u32) -> Self {
        Self {
            token: Some(Arc::new(SecretString::from(token))),
            worker: Some(Ok(worker)),
            replay_rate,
        }
    }
}

/// The admin routes, every one behind the bearer token.
pub fn router(state: AdminState) -> Router {
    Router::new()
        .route("/admin/api/dead-letters", get(handlers::list))
        .route(
            "/admin/api/dead-letters/replay",
            post(handlers::replay_filter),
        )
        .route("/admin/api/dead-letters/{id}", get(handlers::show))
        .route(
            "/admin/api/dead-letters/{id}/replay",
            post(handlers::replay_id),
        )
        .route(
            "/admin/api/dead-letters/{id}/discard",
            post(handlers::discard),
        )
        .route("/admin/api/conversions", get(handlers::conversions))
        .route("/admin/api/privacy/erase", post(handlers::privacy_erase))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ))
        .with_state(state)
}
