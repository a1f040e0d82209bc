//! The HTTP edge HubSpot calls: verifies webhook signatures, validates the
//! events and enqueues them durably in RabbitMQ before answering. No
//! database or HubSpot call happens on the request path: per-portal webhook
//! secrets are read in the background ([`secrets`]); the connector website,
//! its JSON API and the operators' admin API are the `console` crate's.

pub mod body;
mod enqueue;
mod health;
pub mod secrets;
mod state;
pub mod webhook;

use std::time::Duration;

use axum::{
    Router,
    extract::DefaultBodyLimit,
    routing::{get, post},
};
use shared::{
    broker::Publisher,
    config::Settings,
    service::serve::{Limits, serve},
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use state::AppState;

/// The route HubSpot delivers webhooks to.
pub const WEBHOOK_PATH: &str = "/webhooks/hubspot";

/// The router: a plain function of the state, so tests can drive it with
/// `tower::ServiceExt::oneshot` without a socket.
pub fn app(state: AppState) -> Router {
    describe_metrics();
    Router::new()
        .route(WEBHOOK_PATH, post(webhook::receive))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        // The webhook handler enforces its own (configurable) limit so it can
        // answer 413 with a JSON body before reading further.
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
}

/// Runs ingest on `listener` until `shutdown` fires, then finishes in-flight
/// requests and closes the broker connection.
pub async fn run(
    settings: Settings,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    settings.validate_ingest()?;
    let state = AppState::from_settings(&settings)?;
    let db_secrets = if settings.webhook_secrets_db {
        Some(secrets::db::DbSecrets::start(&settings, state.secrets.clone()).await?)
    } else {
        None
    };
    if !state.secrets.has_default() && !state.secrets.has_portal_keys() {
        tracing::warn!(
            "CONNECTOR_HUBSPOT_CLIENT_SECRET is not set and no portal has a webhook \
            secret yet: every webhook is refused until one is configured"
        );
    }
    let background = [
        db_secrets.map(|d| d.spawn(shutdown.clone())),
        settings.webhook_secrets_path().map(|path| {
            secrets::file::spawn_watch(
                path.into(),
                state.secrets.clone(),
                state.secrets_file.unwrap_or_default(),
                shutdown.clone(),
            )
        }),
    ];
    let publisher = state.publisher.clone();
    // Connect now so a misconfigured broker shows at start-up, but do not
    // refuse to start: the supervisor keeps trying and /readyz tells.
    if let Err(e) = publisher.connect().await {
        tracing::warn!(error = %e, "broker not reachable at start-up; will keep retrying");
    }
    let supervisor = publisher.spawn_supervisor(shutdown.clone());
    let upkeep = spawn_metrics_upkeep(
        state.secrets.clone(),
        settings.webhook_secrets_db,
        shutdown.clone(),
    );
    tracing::info!(addr = %listener.local_addr()?, "ingest listening");
    let grace = Duration::from_secs(settings.shutdown_grace_secs);
    let limits = Limits::from_settings(&settings.edge);
    // Bounded drain: HubSpot retries whatever was never answered.
    let served = serve("ingest", listener, app(state), &limits, shutdown, grace).await;
    supervisor.abort();
    upkeep.abort();
    for task in background.into_iter().flatten() {
        task.abort();
    }
    publisher.close().await;
    tracing::info!("ingest stopped");
    served
}

/// What `ingest --check-config` checks: the settings, and the secrets
/// file when one is named (read and parsed, as at start).
pub fn check_config(settings: &Settings) -> Result<(), shared::config::ConfigError> {
    settings.validate_ingest()?;
    if let Some(path) = settings.webhook_secrets_path() {
        secrets::file::load(std::path::Path::new(path)).map_err(|problem| {
            shared::config::ConfigError::Invalid {
                name: "CONNECTOR_WEBHOOK_SECRETS_FILE",
                problem,
            }
        })?;
    }
    Ok(())
}

/// Convenience for the binary and tests: a publisher built from settings.
pub fn publisher(settings: &Settings) -> anyhow::Result<Publisher> {
    Ok(state::publisher_from(settings)?)
}

/// Registers ingest's metrics so `/metrics` lists them (at zero) before the
/// first webhook arrives.
fn describe_metrics() {
    let _ = shared::telemetry::metrics();
    metrics::describe_counter!("ingest_requests_total", "Webhook requests by outcome");
    metrics::describe_counter!(
        "ingest_events_accepted_total",
        "Events enqueued and confirmed by the broker"
    );
    metrics::describe_histogram!(
        "ingest_publish_duration_seconds",
        metrics::Unit::Seconds,
        "Time from publishing a request's messages to the broker's last confirm"
    );
    for outcome in [
        "accepted",
        "invalid_signature",
        "invalid_payload",
        "body_too_large",
        "body_timeout",
        "overloaded",
        "broker_unavailable",
    ] {
        metrics::counter!("ingest_requests_total", "outcome" => outcome).increment(0);
    }
    metrics::counter!("ingest_events_accepted_total").increment(0);
    metrics::describe_counter!(
        "ingest_events_invalid_total",
        "Unreadable events of kinds the pipeline reads, sent to the dead queue as invalid"
    );
    metrics::counter!("ingest_events_invalid_total").increment(0);
    metrics::describe_counter!(
        "ingest_events_ignored_total",
        "Unreadable events of kinds the pipeline does not read, by reason"
    );
    for reason in ["association_change", "unknown_type"] {
        metrics::counter!("ingest_events_ignored_total", "reason" => reason).increment(0);
    }
    metrics::describe_gauge!(
        "ingest_webhook_secrets",
        "Portals with a webhook secret of their own, by source"
    );
    metrics::describe_gauge!(
        "ingest_webhook_secrets_unreadable",
        "Stored webhook secrets that cannot be read (their portals' webhooks are refused)"
    );
    metrics::describe_gauge!(
        "ingest_webhook_secrets_age_seconds",
        metrics::Unit::Seconds,
        "Time since the database's webhook secrets were last read in full"
    );
    metrics::describe_counter!(
        "ingest_webhook_secrets_refresh_failures_total",
        "Failed reads of webhook secrets, by source"
    );
    for source in ["file", "database"] {
        metrics::counter!("ingest_webhook_secrets_refresh_failures_total", "source" => source)
            .increment(0);
    }
    // Registering the histogram makes it render (empty) right away.
    let _ = metrics::histogram!("ingest_publish_duration_seconds");
}

fn spawn_metrics_upkeep(
    secrets: std::sync::Arc<secrets::WebhookSecrets>,
    db: bool,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let handle = shared::telemetry::metrics();
    tokio::spawn(async move {
        loop {
            secrets.record_metrics(db);
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(Duration::from_secs(5)) => handle.run_upkeep(),
            }
        }
    })
}
