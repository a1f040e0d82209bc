//! The admin HTTP API under `/admin/api/...`, on its own listener
//! (`CONNECTOR_ADMIN_ADDR`): the dead-letter store's list, show, replay and
//! discard, replay requests, conversions and privacy erasure for operators,
//! behind a bearer token (`CONNECTOR_ADMIN_TOKEN`; unset or empty: off).
//! Replays are requests carried out by the workers (202 and an id).

mod auth;
mod handlers;

use std::sync::Arc;

use axum::{
    Router, middleware,
    routing::{get, post},
};
use secrecy::SecretString;
use shared::{config::Settings, crypto::SecretCipher};
use sqlx::PgPool;

use crate::replays::ReplayDesk;

/// The store the admin routes work on.
#[derive(Clone)]
pub struct AdminStore {
    /// PostgreSQL (connects lazily, on the first admin request).
    pub pool: PgPool,
    /// Keyed hashes of the privacy erasure.
    pub cipher: SecretCipher,
    /// Queues replay requests for the workers.
    pub replays: ReplayDesk,
}

/// What the admin routes share. Cheap to clone.
#[derive(Clone, Default)]
pub struct AdminState {
    /// The operator token; `None`: the admin API is disabled (401).
    token: Option<Arc<SecretString>>,
    /// The store; `Err`: why it is unavailable (503).
    store: Option<Result<AdminStore, Arc<str>>>,
}

impl AdminState {
    /// No admin API: every route answers 401.
    pub fn disabled() -> Self {
        Self::default()
    }

    /// From the settings: enabled when `CONNECTOR_ADMIN_TOKEN` is set and
    /// not empty; the database (`CONNECTOR_DATABASE_URL`) is connected on
    /// first use.
    pub fn from_settings(settings: &Settings) -> Self {
        let Some(token) = settings.operator_token().cloned() else {
            return Self::disabled();
        };
        Self {
            token: Some(Arc::new(token)),
            store: Some(AdminStore::from_settings(settings).map_err(Arc::from)),
        }
    }
}

impl AdminStore {
    /// The store of these settings; `Err` says which setting is wrong.
    pub fn from_settings(settings: &Settings) -> Result<Self, String> {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(std::time::Duration::from_secs(5))
            .connect_lazy(&settings.database_url)
            .map_err(|e| format!("CONNECTOR_DATABASE_URL: {e}"))?;
        Ok(Self {
            pool,
            cipher: SecretCipher::from_settings(settings).map_err(|e| e.to_string())?,
            replays: ReplayDesk::from_settings(settings).map_err(|e| e.to_string())?,
        })
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
        .route("/admin/api/replays", get(handlers::replays))
        .route("/admin/api/replays/{id}", get(handlers::replay_status))
        .route("/admin/api/conversions", get(handlers::conversions))
        .route("/admin/api/privacy/erase", post(handlers::privacy_erase))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ))
        .with_state(state)
}
