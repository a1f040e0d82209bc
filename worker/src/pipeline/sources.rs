//! The ids of each field's source as stored once per portal and distinct
//! text (`shared::db::mapping_sources`), cached: a portal's conversions
//! share a handful of them (one per object type and configuration), so a
//! conversion stores a number instead of the text. An entry is trusted for
//! [`TTL`] and forgotten when the portal's configuration changes (the
//! portal cache's notifications).

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use domain::events::PortalId;
use sqlx::PgPool;
use tokio::sync::Mutex;

/// How long a stored id is used without asking again.
const TTL: Duration = Duration::from_secs(600);

/// Entries kept at most; past it the cache starts afresh (a few per
/// portal are in use at a time).
const MAX_ENTRIES: usize = 10_000;

/// When the id was stored or confirmed, and the id.
type Slot = Arc<Mutex<Option<(Instant, i64)>>>;

/// Source ids by portal and text.
#[derive(Default)]
pub struct SourcesCache {
    ids: Mutex<HashMap<(PortalId, String), Slot>>,
}

impl SourcesCache {
    /// The id of `sources` for `portal`, stored if new.
    pub async fn id(
        &self,
        pool: &PgPool,
        portal: PortalId,
        sources: &serde_json::Value,
    ) -> Result<i64, sqlx::Error> {
        let slot = {
            let mut ids = self.ids.lock().await;
            if ids.len() >= MAX_ENTRIES {
                ids.clear();
            }
            Arc::clone(ids.entry((portal, sources.to_string())).or_default())
        };
        // Held across the statement: the events of a new configuration
        // (often dozens at once) wait for one insert instead of each
        // making their own; other keys do not wait.
        let mut entry = slot.lock().await;
        if let Some((at, id)) = *entry
            && at.elapsed() < TTL
        {
            return Ok(id);
        }
        let portal_id = i64::try_from(portal.0).unwrap_or(i64::MAX);
        let id = shared::db::mapping_sources::store(pool, portal_id, sources).await?;
        *entry = Some((Instant::now(), id));
        Ok(id)
    }

    /// Forgets a portal's ids (its configuration changed, or it was
    /// deleted and its stored sources with it).
    pub async fn invalidate(&self, portal: PortalId) {
        self.ids.lock().await.retain(|(p, _), _| *p != portal);
    }

    /// Forgets everything (notifications may have been missed).
    pub async fn clear(&self) {
        self.ids.lock().await.clear();
    }
}
