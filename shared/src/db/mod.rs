//! PostgreSQL: the pool, the migrations (`migrations/`), and queries grouped
//! by table. Every query is scoped by portal.

pub mod account;
pub mod adjustments;
pub mod audit;
pub mod budget;
pub mod conversions;
pub mod dead_letter_leases;
pub mod dead_letter_ops;
pub mod dead_letters;
pub mod delivery_lease;
pub mod direct;
pub mod events;
pub mod listen;
pub mod mapping_sources;
pub mod merges;
pub mod outcome_sweeps;
pub mod outcomes;
pub mod portals;
pub mod privacy;
pub mod rate_windows;
pub mod replays;
pub mod retention;
pub mod secrets;
pub mod sessions;
pub mod subscriptions;
pub mod tokens;
pub mod webhook_secrets;
pub mod website;

use std::time::Duration;

use sqlx::{PgPool, postgres::PgPoolOptions};

/// The schema's migrations, embedded at compile time.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// Channel on which configuration changes are announced (payload: portal id).
pub const CONFIG_CHANNEL: &str = "portal_config";

/// Opens a pool of at most `max` connections.
pub async fn connect(url: &str, max: u32) -> Result<PgPool, sqlx::Error> {
    PgPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(Duration::from_secs(10))
        .connect(url)
        .await
}

/// Opens a pool of at most `max` connections named `app` (see
/// [`budget`]); a query waits up to `acquire_timeout` for a free
/// connection before it fails.
pub async fn connect_named(
    url: &str,
    app: &str,
    max: u32,
    acquire_timeout: Duration,
) -> Result<PgPool, sqlx::Error> {
    PgPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(acquire_timeout)
        .connect_with(budget::options(url, app)?)
        .await
}

/// Applies pending migrations (idempotent; safe from several processes).
/// Processes migrate through [`direct::migrate`], which picks the connection.
pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    MIGRATOR.run(pool).await
}

/// Seconds-precision conversion of epoch milliseconds to a timestamp.
pub fn from_epoch_ms(ms: u64) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::from_timestamp_millis(i64::try_from(ms).ok()?)
}

/// A text column read as the type it names (a stored state: see
/// `domain::status`).
pub(crate) fn text<T>(row: &sqlx::postgres::PgRow, column: &str) -> Result<T, sqlx::Error>
where
    T: std::str::FromStr,
    T::Err: std::error::Error + Send + Sync + 'static,
{
    use sqlx::Row as _;
    let value: String = row.try_get(column)?;
    value.parse().map_err(|e| sqlx::Error::ColumnDecode {
        index: column.to_owned(),
        source: Box::new(e),
    })
}

/// `value` as JSON text, for a `json` column written from a `text[]`
/// parameter (`$n::json[]`): PostgreSQL then only checks it, where a
/// `jsonb` parameter would be parsed into a tree (see migration
/// `20261209000100_json_documents.sql`).
pub(crate) fn json_text<T: serde::Serialize + ?Sized>(value: &T) -> Result<String, sqlx::Error> {
    serde_json::to_string(value).map_err(|e| sqlx::Error::Encode(Box::new(e)))
}
