//! Per-portal configuration cache, invalidated by PostgreSQL `NOTIFY` on
//! every apply (`crate::runtime::cache_listener`) and expiring after a
//! minute as a safety net.

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
use sqlx::PgPool;
use tokio::sync::RwLock;

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
