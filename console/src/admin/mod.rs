//! The admin HTTP API under `/admin/api/...`, on its own listener
//! (`CONNECTOR_ADMIN_ADDR`, loopback by default): the dead-letter store's
//! list, show, replay and discard, replay requests, conversions and privacy
//! erasure for operators, behind named operator tokens
//! (`CONNECTOR_ADMIN_TOKEN`, `CONNECTOR_ADMIN_TOKENS`,
//! `CONNECTOR_ADMIN_TOKENS_FILE`; none set: off, 503). Reads of personal
//! data are audited. Replays are requests carried out by the workers (202
//! and an id). The same listener serves `GET /metrics`.

mod audit;
mod auth;
mod dead_letters;
mod handlers;
pub mod pages;

use std::sync::Arc;

use axum::{
    Router,
    http::header,
    middleware,
    response::IntoResponse,
    routing::{get, post},
};
use shared::{config::Settings, crypto::SecretCipher};
use sqlx::PgPool;

use crate::{operators::OperatorAuth, replays::ReplayDesk};

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
#[derive(Clone)]
pub struct AdminState {
    /// The operator tokens; `Err`: why the admin API is off (503).
    auth: Result<Arc<OperatorAuth>, Arc<str>>,
    /// The store; `Err`: why it is unavailable (503).
    store: Option<Result<AdminStore, Arc<str>>>,
    /// The operators' pages: sessions and templates.
    pages: Arc<pages::Pages>,
}

impl AdminState {
    /// No admin API: every route answers 503 naming the settings.
    pub fn disabled() -> Self {
        Self {
            auth: Err(Arc::from(auth::off_reason())),
            store: None,
            pages: Arc::new(pages::Pages::new(false)),
        }
    }

    /// From the settings: on when an operator token is set (each at least
    /// 32 bytes); the database (`CONNECTOR_DATABASE_URL`) is connected on
    /// first use.
    pub fn from_settings(settings: &Settings) -> Self {
        Self::with_pool(settings, None)
    }

    /// [`AdminState::from_settings`] on `pool` (shared with the website),
    /// or a pool of its own when `None`.
    pub fn with_pool(settings: &Settings, pool: Option<PgPool>) -> Self {
        let auth = match OperatorAuth::from_settings(settings, "admin") {
            Ok(Some(a)) => Arc::new(a),
            Ok(None) => return Self::disabled(),
            Err(e) => {
                return Self {
                    auth: Err(Arc::from(e.to_string())),
                    ..Self::disabled()
                };
            }
        };
        let secure = settings
            .admin_public_url
            .as_deref()
            .is_some_and(crate::web::headers::is_https);
        Self {
            auth: Ok(auth),
            store: Some(AdminStore::with_pool(settings, pool).map_err(Arc::from)),
            pages: Arc::new(pages::Pages::new(secure)),
        }
    }

    /// Whether operator tokens are set (the admin API is on).
    pub fn is_on(&self) -> bool {
        self.auth.is_ok()
    }
}

impl AdminStore {
    /// The store of these settings; `Err` says which setting is wrong.
    pub fn from_settings(settings: &Settings) -> Result<Self, String> {
        Self::with_pool(settings, None)
    }

    /// [`AdminStore::from_settings`] on `pool`, or a pool of its own.
    pub fn with_pool(settings: &Settings, pool: Option<PgPool>) -> Result<Self, String> {
        let pool = match pool {
            Some(p) => p,
            None => crate::db::pool(settings)?,
        };
        Ok(Self {
            pool,
            cipher: SecretCipher::from_settings(settings).map_err(|e| e.to_string())?,
            replays: ReplayDesk::from_settings(settings).map_err(|e| e.to_string())?,
        })
    }
}

/// `GET /metrics`: the console's Prometheus metrics (admin listener only).
async fn metrics() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        shared::telemetry::metrics().render(),
    )
}

/// The admin routes, every one behind an operator token, `/metrics`
/// (without one: counters only, no personal data), and the operators'
/// pages (`/admin/...`, a cookie session: [`pages`]), with the website's
/// security headers.
pub fn router(state: AdminState) -> Router {
    let router = Router::new()
        .route("/admin/api/dead-letters", get(dead_letters::list))
        .route(
            "/admin/api/dead-letters/replay",
            post(dead_letters::replay_filter),
        )
        .route("/admin/api/dead-letters/{id}", get(dead_letters::show))
        .route(
            "/admin/api/dead-letters/{id}/replay",
            post(dead_letters::replay_id),
        )
        .route(
            "/admin/api/dead-letters/{id}/discard",
            post(dead_letters::discard),
        )
        .route("/admin/api/replays", get(handlers::replays))
        .route("/admin/api/replays/{id}", get(handlers::replay_status))
        .route("/admin/api/conversions", get(handlers::conversions))
        .route("/admin/api/privacy/erase", post(handlers::privacy_erase))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ))
        .route("/metrics", get(metrics))
        .merge(pages::routes())
        .with_state(state);
    crate::web::headers::secure(router, false)
}
