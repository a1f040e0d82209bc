//! Pruning: processed webhook events (the dedupe record) and, when asked,
//! old delivered conversions. Pending or failed conversions are never pruned.

use std::time::Duration;

use shared::db::retention;
use sqlx::PgPool;

/// What a pruning pass removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pruned {
    /// `webhook_events` rows.
    pub events: u64,
    /// Delivered `conversions` rows.
    pub conversions: u64,
    /// Rows of deleted accounts (conversions, events, dead letters, ...)
    /// recorded by a worker while the deletion ran, or after it.
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
        out.events = retention::prune_events(pool, days).await?;
    }
    if conversion_days > 0 {
        let days = i32::try_from(conversion_days).unwrap_or(i32::MAX);
        out.conversions = retention::prune_delivered_conversions(pool, days).await?;
    }
    out.orphaned = retention::prune_orphans(pool).await?;
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
