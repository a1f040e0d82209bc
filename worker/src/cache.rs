//! Per-portal configuration cache, invalidated by PostgreSQL `NOTIFY` on
//! every apply (and expiring after a minute as a safety net).

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use domain::events::PortalId;
use shared::{
    crypto::SecretCipher,
    db::{
        self,
        portals::{PortalStoreError, StoredPortal},
    },
};
use sqlx::{PgPool, postgres::PgListener};
use tokio::sync::RwLock;
use tokio_util::sync::CancellationToken;

/// How long a cached configuration is trusted without a notification.
const TTL: Duration = Duration::from_secs(60);

/// A cached load: when, and the portal (`None`: unknown).
type Entry = (Instant, Option<Arc<StoredPortal>>);

/// Portal configurations by id (`None`: unknown portal).
#[derive(Default)]
pub struct PortalCache {
    entries: RwLock<HashMap<PortalId, Entry>>,
}

impl PortalCache {
    /// The portal's configuration, from the cache or the database.
    pub async fn get(
        &self,
        pool: &PgPool,
        cipher: &SecretCipher,
        portal: PortalId,
    ) -> Result<Option<Arc<StoredPortal>>, PortalStoreError> {
        if let Some((at, p)) = self.entries.read().await.get(&portal)
            && at.elapsed() < TTL
        {
            return Ok(p.clone());
        }
        let loaded = db::portals::load(pool, Some(cipher), portal)
            .await?
            .map(Arc::new);
        self.entries
            .write()
            .await
            .insert(portal, (Instant::now(), loaded.clone()));
        Ok(loaded)
    }

    /// Forgets one portal.
    pub async fn invalidate(&self, portal: PortalId) {
        self.entries.write().await.remove(&portal);
    }

    /// Forgets everything (notifications may have been missed).
    pub async fn clear(&self) {
        self.entries.write().await.clear();
    }
}

/// Listens for configuration changes until `shutdown`, reconnecting as needed.
pub async fn listen(cache: crate::Worker, shutdown: CancellationToken) {
    let pool = cache.pool.clone();
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
                        cache.tokens.invalidate(PortalId(id)).await;
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
