//! Pruning: processed webhook events (the dedupe record) and, when asked,
//! old delivered conversions. Pending or failed conversions are never pruned.

use std::time::Duration;

use sqlx::PgPool;

/// What a pruning pass removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pruned {
    /// `webhook_events` rows.
    pub events: u64,
    /// Delivered `conversions` rows.
    pub conversions: u64,
    /// Rows (conversions and events) of accounts deleted in the last two
    /// days, recorded by a worker while the deletion ran.
    pub orphaned: u64,
}

/// HubSpot retries a delivery for about 24 hours: the dedupe record must
/// outlive that, so events are kept at least this long whatever the setting.
pub const MIN_EVENT_RETENTION_DAYS: u32 = 2;

/// Deletes events processed more than `event_days` ago and, when
/// `conversion_days` is non-zero, conversions delivered more than that ago.
pub async fn prune(pool: &PgPool, event_days: u32, conversion_days: u32) -> sqlx::Result<Pruned> {
    let mut out = Pruned::default();
    if event_days > 0 {
        let days = i32::try_from(event_days.max(MIN_EVENT_RETENTION_DAYS)).unwrap_or(i32::MAX);
        out.events = sqlx::query(
            "DELETE FROM webhook_events WHERE processed_at < now() - make_interval(days => $1)",
        )
        .bind(days)
        .execute(pool)
        .await?
        .rows_affected();
    }
    if conversion_days > 0 {
        let days = i32::try_from(conversion_days).unwrap_or(i32::MAX);
        // The events that point at them keep their row, without the link
        // (no foreign key does it: migration 000008).
        out.conversions = sqlx::query_scalar(
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
        .await
        .map(|n: i64| u64::try_from(n).unwrap_or(0))?;
    }
    // Rows a worker recorded while their account was being deleted (its
    // transaction saw the portal; the deletion did not see its rows).
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
    out.orphaned = u64::try_from(conversions + events).unwrap_or(0);
    Ok(out)
}

/// Prunes every `every` until `shutdown` (run inside `worker run`; several
/// workers pruning at once only repeat the same deletes).
pub fn spawn(
    pool: PgPool,
    event_days: u32,
    conversion_days: u32,
    every: Duration,
    shutdown: tokio_util::sync::CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(every) => {}
            }
            match prune(&pool, event_days, conversion_days).await {
                Ok(p) => {
                    metrics::counter!("worker_pruned_rows_total", "table" => "webhook_events")
                        .increment(p.events);
                    metrics::counter!("worker_pruned_rows_total", "table" => "conversions")
                        .increment(p.conversions);
                    metrics::counter!("worker_pruned_rows_total", "table" => "deleted_accounts")
                        .increment(p.orphaned);
                    if p.events + p.conversions + p.orphaned > 0 {
                        tracing::info!(
                            events = p.events,
                            conversions = p.conversions,
                            orphaned = p.orphaned,
                            "pruned old rows"
                        );
                    }
                }
                Err(e) => tracing::warn!(error = %e, "pruning failed; will try again"),
            }
        }
    })
}
