//! Pruning statements: processed webhook events, old delivered
//! conversions, rows recorded for accounts that were deleted.

use sqlx::PgPool;

/// Deletes events processed more than `days` ago; rows deleted.
pub async fn prune_events(pool: &PgPool, days: i32) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "DELETE FROM webhook_events WHERE processed_at < now() - make_interval(days => $1)",
    )
    .bind(days)
    .execute(pool)
    .await?
    .rows_affected())
}

/// Deletes conversions delivered more than `days` ago; rows deleted. The
/// events that point at them keep their row, without the link (no foreign
/// key does it: migration 000008).
pub async fn prune_delivered_conversions(pool: &PgPool, days: i32) -> Result<u64, sqlx::Error> {
    let n: i64 = sqlx::query_scalar(
        "WITH gone AS (
             DELETE FROM conversions WHERE status = 'delivered' AND delivered_at < now() - make_interval(days => $1)
             RETURNING id
         ), unlinked AS (
             UPDATE webhook_events SET conversion_id = NULL WHERE conversion_id IN (SELECT id FROM gone)
         )
         SELECT count(*) FROM gone",
    )
    .bind(days)
    .fetch_one(pool)
    .await?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// Deletes the rows workers recorded for deleted accounts, while the
/// deletion ran or after it (events HubSpot still sent): every per-portal
/// table's rows (`super::account::prune_deleted`); rows deleted.
pub async fn prune_orphans(pool: &PgPool) -> Result<u64, sqlx::Error> {
    super::account::prune_deleted(pool).await
}
