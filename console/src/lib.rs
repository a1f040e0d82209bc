//! The console: the connector website (OAuth install, settings, triggers,
//! mappings, preview, activity) and its JSON API `/api/v1` on one listener
//! (`CONNECTOR_CONSOLE_ADDR`), and the operators' admin API `/admin/api/...`
//! and `/metrics` on its own (`CONNECTOR_ADMIN_ADDR`, loopback by default;
//! the admin API answers only with an operator token set: [`operators`]).
//!
//! The console never delivers to impact.com: a replay is recorded in
//! `replay_requests` and published to the replays queue, and a worker
//! carries it out ([`replays`]).

pub mod admin;
pub mod api;
pub mod db;
mod extract;
pub mod operators;
pub mod replays;
mod state;
pub mod web;

use std::time::Duration;

use axum::{Router, middleware};
use shared::{
    config::Settings,
    service::serve::{Limits, serve},
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use state::AppState;

/// The website and `/api/v1` router: a plain function of the state, so
/// tests can drive it with `tower::ServiceExt::oneshot` without a socket.
pub fn app(state: AppState) -> Router {
    let https = state.https;
    let router = Router::new()
        .merge(web::routes())
        .merge(api::routes().route_layer(middleware::from_fn_with_state(state.clone(), api::guard)))
        .merge(web::headers::routes())
        .layer(middleware::from_fn_with_state(
            state.clone(),
            web::throttle::limit,
        ))
        .with_state(state);
    web::headers::secure(router, https)
}

/// Runs the console until `shutdown` fires: the website and `/api/v1` on
/// `listener`, `/metrics` and the admin API on `admin` when given (the
/// admin API answers 503 naming the settings unless an operator token is
/// set; an empty one is none).
pub async fn run(
    settings: Settings,
    listener: TcpListener,
    admin: Option<TcpListener>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    settings.validate_console()?;
    // One pool (CONNECTOR_CONSOLE_DB_CONNECTIONS) for the website, its API
    // and the admin API.
    let pool = db::pool(&settings).ok();
    let state = AppState::with_pool(&settings, pool.clone());
    if let Ok(site) = &state.website {
        // The website's schema; the worker applies the same migrations
        // (over CONNECTOR_DATABASE_DIRECT_URL when it is set).
        if let Err(e) = shared::db::direct::migrate(&settings, &site.pool).await {
            tracing::warn!(error = %e, "website: database migrations not applied; pages answer 503 until the database is reachable");
        }
    }
    let grace = Duration::from_secs(settings.shutdown_grace_secs);
    describe_metrics();
    let limits = Limits::from_settings(&settings.edge);
    let admin_task = match admin {
        Some(l) => {
            let admin_state = admin::AdminState::with_pool(&settings, pool.clone());
            let addr = l.local_addr()?;
            if admin_state.is_on() {
                tracing::info!(%addr, operators = ?settings.operator_tokens()?.names().collect::<Vec<_>>(), "admin API and /metrics listening");
            } else {
                tracing::warn!(%addr, "no operator token set: the admin API is off (503); /metrics listening");
            }
            if !addr.ip().is_loopback() {
                tracing::warn!(%addr, "the admin listener is not on loopback: make sure only operators can reach it");
            }
            let router = admin::router(admin_state);
            let limits = limits.clone();
            let stop = shutdown.clone();
            Some(tokio::spawn(async move {
                serve("admin", l, router, &limits, stop, grace).await
            }))
        }
        None => None,
    };
    tracing::info!(addr = %listener.local_addr()?, "console listening");
    let served = serve(
        "console",
        listener,
        app(state.clone()),
        &limits,
        shutdown.clone(),
        grace,
    )
    .await;
    if let Some(task) = admin_task {
        let _ = task.await;
    }
    if let Ok(site) = &state.website {
        site.replays.close().await;
    }
    tracing::info!("console stopped");
    served
}

/// Installs the metrics recorder and lists the console's metrics (at zero)
/// so `/metrics` shows them before the first request.
fn describe_metrics() {
    let _ = shared::telemetry::metrics();
    metrics::describe_counter!(
        "console_operator_auth_total",
        "Operator-token checks by surface (admin, api) and outcome (ok, missing, invalid, locked_out)"
    );
    metrics::describe_counter!(
        "console_operator_lockouts_total",
        "Lockouts after too many failed operator-token attempts, by surface and scope (client, global)"
    );
    for surface in ["admin", "api"] {
        for outcome in ["ok", "missing", "invalid", "locked_out"] {
            metrics::counter!("console_operator_auth_total", "surface" => surface, "outcome" => outcome)
                .increment(0);
        }
        for scope in ["client", "global"] {
            metrics::counter!("console_operator_lockouts_total", "surface" => surface, "scope" => scope)
                .increment(0);
        }
    }
}
