//! The console's PostgreSQL pool, shared by the website, its API and the
//! admin API.

use shared::config::Settings;

/// The console's PostgreSQL pool: `CONNECTOR_CONSOLE_DB_CONNECTIONS`
/// connections named `connector-console`, opened on first use; a request
/// waits up to 5 s for a free one.
pub fn pool(s: &Settings) -> Result<sqlx::PgPool, String> {
    shared::db::budget::lazy_named(
        &s.database_url,
        shared::db::budget::CONSOLE_APP,
        s.console_db_connections.max(2),
        std::time::Duration::from_secs(5),
    )
    .map_err(|e| format!("CONNECTOR_DATABASE_URL: {e}"))
}
