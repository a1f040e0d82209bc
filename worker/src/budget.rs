//! The connection budget's start-up check: this deployment's pools against
//! the server's `max_connections` (see `shared::db::budget`).

use shared::{
    config::Settings,
    db::budget::{INGEST_CONNECTIONS, Plan, ServerLimits},
};
use sqlx::PgPool;

/// The plan of these settings with `workers` worker processes.
pub fn plan(settings: &Settings, workers: u32) -> Plan {
    Plan {
        workers: workers.max(1),
        worker_pool: settings.worker_db_connections.max(2),
        console: settings.console_db_connections,
        ingest: if settings.webhook_secrets_db {
            INGEST_CONNECTIONS
        } else {
            0
        },
    }
}

/// Reads `max_connections` and logs a warning when the pools may open
/// more: workers are `CONNECTOR_EXPECTED_WORKERS`, or the worker processes
/// connected now when more (or when it is unset). With
/// `CONNECTOR_DATABASE_DIRECT_URL` set the main pools go through a pooler
/// whose own pool is what PostgreSQL sees: nothing to add up here.
pub async fn check(settings: &Settings, pool: &PgPool) {
    if settings.direct_database_url().is_some() {
        tracing::info!(
            "connection budget: CONNECTOR_DATABASE_DIRECT_URL is set, so the main pool is taken to go \
             through a pooler (PgBouncer): PostgreSQL sees the pooler's connections, plus one per \
             worker and ingest replica listening directly"
        );
        return;
    }
    let server = match ServerLimits::read(pool).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "connection budget: could not read max_connections");
            return;
        }
    };
    let workers = settings.expected_workers.max(server.workers_connected);
    let plan = plan(settings, workers);
    match plan.warning(&server) {
        Some(warning) => tracing::warn!(
            max_connections = server.max_connections,
            planned = plan.total(),
            workers,
            "{warning}"
        ),
        None => tracing::info!(
            max_connections = server.max_connections,
            planned = plan.total(),
            workers,
            connected = server.connected,
            "connection budget fits the server"
        ),
    }
}
