//! The connections that hold session state, apart from the main pool:
//! `LISTEN` (a notification arrives on the connection that listens) and the
//! migrations (sqlx's migrator holds a session advisory lock while it
//! runs). A pooler in transaction mode (PgBouncer) hands each transaction
//! a different server connection, so with `CONNECTOR_DATABASE_DIRECT_URL`
//! set these two go straight to PostgreSQL while the main pool
//! (`CONNECTOR_DATABASE_URL`) may go through the pooler. Unset, the main
//! pool does both, as before.

use std::time::Duration;

use sqlx::{PgPool, postgres::PgPoolOptions};

use crate::config::Settings;

/// Longest wait for a direct connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The pool a process listens through: one connection named `app` on the
/// direct URL, opened on first use (so a database that is down does not
/// stop its owner from starting), or `main` when no direct URL is set.
pub fn listen_pool(settings: &Settings, app: &str, main: &PgPool) -> Result<PgPool, sqlx::Error> {
    match settings.direct_database_url() {
        Some(url) => super::budget::lazy_named(url, app, 1, CONNECT_TIMEOUT),
        None => Ok(main.clone()),
    }
}

/// Applies pending migrations over one connection of the direct URL,
/// closed afterwards, or over `main` when no direct URL is set.
pub async fn migrate(settings: &Settings, main: &PgPool) -> anyhow::Result<()> {
    let Some(url) = settings.direct_database_url() else {
        return Ok(super::migrate(main).await?);
    };
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(CONNECT_TIMEOUT)
        .connect(url)
        .await
        .map_err(|e| {
            anyhow::anyhow!("connecting to PostgreSQL (CONNECTOR_DATABASE_DIRECT_URL): {e}")
        })?;
    let applied = super::migrate(&pool).await;
    pool.close().await;
    Ok(applied?)
}
