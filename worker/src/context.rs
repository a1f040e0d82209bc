//! Everything a worker shares across messages: pool, clients, caches.

use std::{sync::Arc, time::Duration};

use anyhow::Context as _;
use shared::{
    config::Settings,
    crypto::SecretCipher,
    db,
    db::delivery_lease::LeaseTimes,
    hubspot::{HubSpotClient, OAuthApp},
    impact::ImpactClient,
};
use sqlx::PgPool;

use crate::pipeline::{
    deliver::batches::{DeliveryBatches, MAX_FLUSHING},
    fetch::{currency::CurrencyCache, stages::StageCache, token_cache::TokenCache},
    portal_cache::PortalCache,
    record::batch::RecordBatch,
    retry::ShortRetry,
    sources::SourcesCache,
};

/// Shared state of one worker process. Cheap to clone.
#[derive(Clone)]
pub struct Worker {
    inner: Arc<Inner>,
}

/// The parts of [`Worker`].
pub struct Inner {
    /// PostgreSQL.
    pub pool: PgPool,
    /// Decrypts stored secrets.
    pub cipher: SecretCipher,
    /// HubSpot CRM API.
    pub hubspot: HubSpotClient,
    /// impact.com Conversions API.
    pub impact: ImpactClient,
    /// The HubSpot app (OAuth refresh), when configured.
    pub oauth_app: Option<OAuthApp>,
    /// Portal configurations.
    pub portals: PortalCache,
    /// Deal stage labels per portal.
    pub stages: StageCache,
    /// Company currencies per portal (HubSpot's account information).
    pub currencies: CurrencyCache,
    /// OAuth access tokens per portal.
    pub tokens: TokenCache,
    /// Stored ids of each field's source per portal.
    pub sources: SourcesCache,
    /// In-process retries of short blips.
    pub retry: ShortRetry,
    /// Events of one message processed at once.
    pub event_concurrency: usize,
    /// Erase a contact's data on `contact.deletion` too.
    pub erase_on_deletion: bool,
    /// Lease of a dead letter taken by a replay (renewed while it runs).
    pub replay_lease: Duration,
    /// A delivery's lease on the rows it posts.
    pub delivery_lease: LeaseTimes,
    /// Event outcomes waiting for their commit (all messages share it).
    pub records: Arc<RecordBatch>,
    /// Deliveries waiting for their portal's next batch.
    pub deliveries: DeliveryBatches,
    /// Conversions of one delivery batch posted at once
    /// (`CONNECTOR_WORKER_DELIVERY_CONCURRENCY`; by default as many as the
    /// messages of a portal in progress would post, shared by its batches
    /// in flight).
    pub delivery_concurrency: usize,
}

impl std::ops::Deref for Worker {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.inner
    }
}

/// HTTP timeout of HubSpot and impact.com calls.
const HTTP_TIMEOUT: Duration = Duration::from_secs(20);

impl Worker {
    /// Builds the worker's state on an existing (migrated) pool.
    pub fn new(settings: &Settings, pool: PgPool) -> anyhow::Result<Self> {
        let cipher = SecretCipher::from_settings(settings)?;
        let http = shared::upstream::client_builder()
            .timeout(HTTP_TIMEOUT)
            .connect_timeout(Duration::from_secs(5))
            // Kept-alive connections for concurrent deliveries: enough idle
            // ones per host that bursts do not reconnect.
            .pool_max_idle_per_host(256)
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_nodelay(true)
            .user_agent(concat!(
                "hubspot-impact-connector/",
                env!("CARGO_PKG_VERSION")
            ))
            .build()
            .context("building the HTTP client")?;
        let hubspot = HubSpotClient::new(http.clone(), &settings.hubspot_api_url)
            .context("CONNECTOR_HUBSPOT_API_URL is not a URL")?
            .with_shared_budget(pool.clone());
        let impact = ImpactClient::new(http, &settings.impact_api_url);
        let oauth_app = match (&settings.hubspot_client_id, &settings.hubspot_client_secret) {
            (Some(id), Some(secret)) => Some(OAuthApp {
                client_id: id.clone(),
                client_secret: secret.clone(),
            }),
            _ => None,
        };
        Ok(Self {
            inner: Arc::new(Inner {
                records: Arc::new(RecordBatch::new(
                    pool.clone(),
                    LeaseTimes::of(settings.delivery_lease()),
                )),
                pool,
                cipher,
                hubspot,
                impact,
                oauth_app,
                portals: PortalCache::default(),
                stages: StageCache::default(),
                currencies: CurrencyCache::default(),
                sources: SourcesCache::default(),
                tokens: TokenCache::default(),
                retry: ShortRetry::from_settings(settings),
                event_concurrency: usize::from(settings.worker_event_concurrency.max(1)),
                deliveries: DeliveryBatches::default(),
                delivery_concurrency: settings.delivery_concurrency(MAX_FLUSHING),
                erase_on_deletion: settings.privacy_erase_on_deletion,
                replay_lease: settings.replay_lease(),
                delivery_lease: LeaseTimes::of(settings.delivery_lease()),
            }),
        })
    }

    /// Connects to PostgreSQL, migrates, and builds the state.
    pub async fn connect(settings: &Settings) -> anyhow::Result<Self> {
        let max = settings.worker_db_connections.max(2);
        // A query waits for a free connection (the pool is small: the
        // connection budget) rather than failing and retrying the message.
        let pool = db::connect_named(
            &settings.database_url,
            &db::budget::worker_app_name(),
            max,
            Duration::from_secs(settings.worker_db_acquire_timeout_secs.max(1)),
        )
        .await
        .context("connecting to PostgreSQL (CONNECTOR_DATABASE_URL)")?;
        db::direct::migrate(settings, &pool)
            .await
            .context("applying migrations")?;
        crate::budget::check(settings, &pool).await;
        Self::new(settings, pool)
    }
}
