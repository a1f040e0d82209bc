//! Deal stage labels per portal (pipelines API), cached for five minutes.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use domain::events::PortalId;
use secrecy::SecretString;
use shared::hubspot::{
    HubSpotClient, HubSpotError, Pipeline,
    assemble::{StageLabels, find_stage_label},
};
use tokio::sync::Mutex;

const TTL: Duration = Duration::from_secs(300);
/// A stage missing from a cache at least this old triggers a refetch (it
/// may have been created since).
const REFRESH_ON_MISS: Duration = Duration::from_secs(10);

/// When pipelines were fetched, and the pipelines.
type Entry = (Instant, Arc<Vec<Pipeline>>);

/// Pipelines by portal.
#[derive(Default)]
pub struct StageCache {
    entries: Mutex<HashMap<PortalId, Entry>>,
}

impl StageCache {
    /// The label of `stage` (in `pipeline` when known); `None` when HubSpot
    /// does not know the stage (the caller falls back to the internal id).
    pub async fn label(
        &self,
        client: &HubSpotClient,
        token: &SecretString,
        portal: PortalId,
        pipeline: Option<&str>,
        stage: &str,
    ) -> Result<Option<String>, HubSpotError> {
        // Held across a fetch: concurrent events of a portal wait for one
        // pipelines call instead of each making their own.
        let mut entries = self.entries.lock().await;
        let cached = entries.get(&portal).cloned();
        if let Some((at, pipelines)) = &cached
            && at.elapsed() < TTL
        {
            let found = find_stage_label(pipelines, pipeline, stage);
            if found.is_some() || at.elapsed() < REFRESH_ON_MISS {
                return Ok(found);
            }
        }
        let pipelines = Arc::new(client.deal_pipelines(token).await?);
        let found = find_stage_label(&pipelines, pipeline, stage);
        entries.insert(portal, (Instant::now(), pipelines));
        Ok(found)
    }

    /// The cache's labels for one portal's events, as the assembly asks.
    pub fn of(&self, portal: PortalId) -> PortalStages<'_> {
        PortalStages {
            cache: self,
            portal,
        }
    }

    /// Forgets a portal's pipelines.
    pub async fn invalidate(&self, portal: PortalId) {
        self.entries.lock().await.remove(&portal);
    }
}

/// One portal's stage labels from the [`StageCache`].
pub struct PortalStages<'a> {
    cache: &'a StageCache,
    portal: PortalId,
}

impl StageLabels for PortalStages<'_> {
    fn label(
        &self,
        client: &HubSpotClient,
        token: &SecretString,
        pipeline: Option<&str>,
        stage: &str,
    ) -> impl Future<Output = Result<Option<String>, HubSpotError>> + Send {
        self.cache
            .label(client, token, self.portal, pipeline, stage)
    }
}
