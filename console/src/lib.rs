//! The console: the connector website (OAuth install, settings, triggers,
//! mappings, preview, activity) and its JSON API `/api/v1` on one listener
//! (`CONNECTOR_CONSOLE_ADDR`), and the operators' admin API `/admin/api/...`
//! on its own (`CONNECTOR_ADMIN_ADDR`, only with a non-empty
//! `CONNECTOR_ADMIN_TOKEN`).
//!
//! The console never delivers to impact.com: a replay is recorded in
//! `replay_requests` and published to the replays queue, and a worker
//! carries it out ([`replays`]).

pub mod admin;
pub mod api;
mod extract;
pub mod replays;
mod state;
pub mod web;

use std::time::Duration;

use axum::Router;
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
    Router::new()
        .merge(web::routes())
        .merge(api::routes())
        .with_state(state)
}

/// Runs the console until `shutdown` fires: the website and `/api/v1` on
/// `listener`, the admin API on `admin` when given and an operator token is
/// set (an empty token never opens it).
pub async fn run(
    settings: Settings,
    listener: TcpListener,
    admin: Option<TcpListener>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    settings.validate_console()?;
    let state = AppState::from_settings(&settings);
    if let Ok(site) = &state.website {
        // The website's schema; the worker applies the same migrations.
        if let Err(e) = shared::db::migrate(&site.pool).await {
            tracing::warn!(error = %e, "website: database migrations not applied; pages answer 503 until the database is reachable");
        }
    }
    let grace = Duration::from_secs(settings.shutdown_grace_secs);
    let limits = Limits::from_settings(&settings.edge);
    let admin_task = match (admin, settings.operator_token()) {
        (Some(l), Some(_)) => {
            let router = admin::router(admin::AdminState::from_settings(&settings));
            tracing::info!(addr = %l.local_addr()?, "admin API listening");
            let limits = limits.clone();
            let stop = shutdown.clone();
            Some(tokio::spawn(async move {
                serve("admin", l, router, &limits, stop, grace).await
            }))
        }
        (Some(_), None) => {
            tracing::warn!("CONNECTOR_ADMIN_TOKEN is unset or empty: the admin API stays off");
            None
        }
        (None, _) => None,
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
