//! Pruning statements: processed webhook events, old delivered
//! conversions, rows recorded while their account was being deleted.

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

/// Deletes the rows a worker recorded while their account was being deleted
/// in the last two days (its transaction saw the portal; the deletion did
/// not see its rows); rows deleted.
pub async fn prune_orphans(pool: &PgPool) -> Result<u64, sqlx::Error> {
    let (conversions, events): (i64, i64) = sqlx::query_as(
        "WITH deleted AS (
             SELECT DISTINCT a.portal_id FROM audit_log a
             WHERE a.action = 'portal.delete' AND a.at > now() - interval '2 days'
               AND NOT EXISTS (SELECT 1 FROM portals p WHERE p.portal_id = a.portal_id)
         ), c AS (
             DELETE FROM conversions WHERE portal_id IN (SELECT portal_id FROM deleted) RETURNING 1
         ), e AS (
             DELETE FROM webhook_events WHERE portal_id IN (SELECT portal_id FROM deleted) RETURNING 1
         )
         SELECT (SELECT count(*) FROM c), (SELECT count(*) FROM e)",
    )
    .fetch_one(pool)
    .await?;
    Ok(u64::try_from(conversions + events).unwrap_or(0))
}
