//! Listens for configuration changes (PostgreSQL `NOTIFY` on every apply)
//! and invalidates the worker's per-portal caches. The listening connection
//! comes from its own pool (`shared::db::direct::listen_pool`): straight to
//! PostgreSQL when the main pool goes through a transaction-mode pooler.

use std::time::Duration;

use domain::events::PortalId;
use shared::db;
use sqlx::{PgPool, postgres::PgListener};
use tokio_util::sync::CancellationToken;

/// Listens for configuration changes on a connection of `pool` until
/// `shutdown`, reconnecting as needed.
pub async fn listen(cache: crate::Worker, pool: PgPool, shutdown: CancellationToken) {
    loop {
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "config listener cannot connect; retrying");
                if sleep_or_shutdown(&shutdown, Duration::from_secs(2)).await {
                    return;
                }
                continue;
            }
        };
        if let Err(e) = listener.listen(db::CONFIG_CHANNEL).await {
            tracing::warn!(error = %e, "LISTEN failed; retrying");
            if sleep_or_shutdown(&shutdown, Duration::from_secs(2)).await {
                return;
            }
            continue;
        }
        // Changes made while we were not listening are unknown: start afresh.
        cache.portals.clear().await;
        cache.sources.clear().await;
        loop {
            let next = tokio::select! {
                () = shutdown.cancelled() => return,
                n = listener.try_recv() => n,
            };
            match next {
                Ok(Some(n)) => match n.payload().parse::<u64>() {
                    Ok(id) => {
                        tracing::debug!(portal = id, "configuration changed");
                        cache.portals.invalidate(PortalId(id)).await;
                        cache.stages.invalidate(PortalId(id)).await;
                        cache.currencies.invalidate(PortalId(id)).await;
                        cache.tokens.invalidate(PortalId(id)).await;
                        cache.sources.invalidate(PortalId(id)).await;
                    }
                    Err(_) => cache.portals.clear().await,
                },
                // The connection was lost (sqlx reconnects on the next call).
                Ok(None) => cache.portals.clear().await,
                Err(e) => {
                    tracing::warn!(error = %e, "config listener failed; reconnecting");
                    cache.portals.clear().await;
                    break;
                }
            }
        }
    }
}

/// Sleeps; true when shutdown fired first.
async fn sleep_or_shutdown(shutdown: &CancellationToken, d: Duration) -> bool {
    tokio::select! {
        () = shutdown.cancelled() => true,
        () = tokio::time::sleep(d) => false,
    }
}
