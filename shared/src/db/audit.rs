//! The `audit_log` table: who did what (configuration changes, replays,
//! discards), when, and with what outcome.

use serde_json::Value;
use sqlx::PgExecutor;

/// Appends to the audit log: who did what, with what outcome.
pub async fn record<'e>(
    db: impl PgExecutor<'e>,
    portal: Option<i64>,
    actor: &str,
    action: &str,
    detail: &Value,
    outcome: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO audit_log (portal_id, actor, action, detail, outcome) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(portal)
    .bind(actor)
    .bind(action)
    .bind(detail)
    .bind(outcome)
    .execute(db)
    .await
    .map(|_| ())
}
