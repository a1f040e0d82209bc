//! What the commands share: a migrated pool, the acting user.

use anyhow::Context as _;
use shared::{config::Settings, db};
use sqlx::PgPool;

/// A small pool for one command, migrated.
pub async fn pool(settings: &Settings) -> anyhow::Result<PgPool> {
    let pool = db::connect(&settings.database_url, 2)
        .await
        .context("connecting to PostgreSQL (CONNECTOR_DATABASE_URL)")?;
    db::direct::migrate(settings, &pool)
        .await
        .context("applying migrations")?;
    Ok(pool)
}

/// Who acts: the operating-system user, for the audit log.
pub fn actor() -> String {
    format!(
        "cli:{}",
        std::env::var("USER").unwrap_or_else(|_| "unknown".into())
    )
}
