//! The sandbox: faithful fakes of HubSpot and impact.com, following HubSpot's
//! and impact.com's published API references.
//!
//! Tests start one with [`Sandbox::start`] on random ports and point the
//! pipeline at [`Sandbox::hubspot_url`] and [`Sandbox::impact_url`]; the
//! `sandbox` binary serves the same fakes for people and benchmarks.
//!
//! Fake HubSpot (bearer: a portal's private-app token, `pat-sandbox-{portal}`
//! by default, or an OAuth access token):
//! - CRM: `GET /crm/v3/objects/{type}[/{id}]`, `POST .../batch/read`,
//!   `POST .../search`, `GET /crm/v4/objects/{from}/{id}/associations/{to}`,
//!   `POST /crm/v4/associations/{from}/{to}/batch/read`,
//!   `GET /crm/v3/properties/{type}[/{name}]`, `GET /crm/v3/pipelines/deals[/{id}[/stages]]`.
//! - OAuth: `GET|POST /oauth/authorize`, `POST /oauth/2026-03/token` (and
//!   `/oauth/v1/token`), `POST /oauth/2026-03/token/introspect`,
//!   `GET /oauth/v1/access-tokens/{t}`, `GET|DELETE /oauth/v1/refresh-tokens/{t}`.
//! - Webhooks API (`?hapikey=` the developer API key, app [`SandboxConfig::app_id`]):
//!   `GET|PUT|DELETE /webhooks/v3/{appId}/settings` (the delivery target),
//!   `GET|POST /webhooks/v3/{appId}/subscriptions`,
//!   `GET|PATCH|DELETE /webhooks/v3/{appId}/subscriptions/{id}`,
//!   `POST /webhooks/v3/{appId}/subscriptions/batch/update`. Events are
//!   delivered per [`SandboxConfig::webhook_subscriptions`].
//! - Control (JSON): `GET /_sandbox`; `POST /_sandbox/portals/{p}/objects/{type}`
//!   `{"properties":{..},"associations":[{"type":"contacts","id":1}]}`;
//!   `GET|PATCH|DELETE /_sandbox/portals/{p}/objects/{type}/{id}` (PATCH
//!   `{"properties":{..}}` emits `propertyChange` events);
//!   `POST /_sandbox/portals/{p}/objects/contacts/{id}/privacy-deletion`
//!   (GDPR delete: the contact is gone, `contact.privacyDeletion` emitted);
//!   `POST /_sandbox/portals/{p}/objects/{type}/merge`
//!   `{"primaryObjectId","objectIdToMerge"}` (a new record, `{type}.merge`
//!   emitted; answers `{"id"}`); `POST .../objects/{type}/{id}/restore`
//!   (`{type}.restore` emitted);
//!   `POST /_sandbox/portals/{p}/deals` `{"properties","line_items","contact_id"}`;
//!   `POST /_sandbox/portals/{p}/uninstall`, `.../authorize`
//!   `{"redirect_uri","state"}`, `.../expire-tokens`;
//!   `POST /_sandbox/portals/{p}/scenarios/import-contacts` `{"count":N}`,
//!   `.../scenarios/deal-stage-stream` `{"deals":N,"stages":[..]}`;
//!   `PUT /_sandbox/faults` `{"latency_ms","error_rate","outage_ms","rate_limit_per_10s"}`;
//!   `PUT|DELETE /_sandbox/webhook` (a [`WebhookTarget`]);
//!   `PUT /_sandbox/delivery` `{"duplicate_share","out_of_order"}`; `GET /_sandbox/webhooks`;
//!   `GET|PUT /_sandbox/subscriptions` (`{"mode":"all"|"as_subscribed"}`).
//!
//! Fake impact.com (Basic auth with a configured account):
//! - `POST /Advertisers/{SID}/Conversions`, `PUT|DELETE /Advertisers/{SID}/Actions`,
//!   `GET /Advertisers/{SID}/APISubmissions/{BatchId}`.
//! - Control: `GET /` or `/_sandbox` (HTML list of everything that arrived),
//!   `GET /_sandbox/submissions?account=&order_id=&since=&all=true` (JSON),
//!   `DELETE /_sandbox/submissions`, `PUT|DELETE /_sandbox/faults` (a
//!   [`FaultPlan`] plus `window_ms`, `start_in_ms`, `next: [..]`),
//!   `GET /_sandbox/accounts`, `PUT /_sandbox/outcomes`
//!   `{"order_id","error_type","error_reason"}` (that OrderId's submissions
//!   complete with this error, e.g. `Contract Error`/`CONTRACT_NOT_FOUND`),
//!   `GET|PUT /_sandbox/event-types` (`{"Closed Won": 5001}`: the tracker id
//!   of an EventTypeCode, so Actions requests find conversions sent by code).

pub mod hubspot;
pub mod impact;
mod serve;

use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use hubspot::{
    AssociationChange, CrmObject, DeliveryOptions, FakeHubSpot, HubUser, ObjectType, Props,
    Subscription, SubscriptionMode, WebhookEvent, WebhookStats, props,
};
pub use impact::{FakeImpact, FaultPlan, Submission, SubmissionKind};

/// A portal to create at start-up, with seeded records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortalSeed {
    /// The HubSpot account id (hub id).
    pub portal_id: u64,
    /// Seeded contacts.
    pub contacts: usize,
    /// Seeded companies.
    pub companies: usize,
    /// Seeded deals (each with 1 to 3 line items).
    pub deals: usize,
    /// A private-app token accepted as bearer token for this portal.
    pub private_app_token: Option<String>,
}

impl PortalSeed {
    /// A portal of roughly `size` records: `size` contacts, `size / 4`
    /// companies and `size / 2` deals, with the token `pat-sandbox-{portal}`.
    pub fn sized(portal_id: u64, size: usize) -> PortalSeed {
        PortalSeed {
            portal_id,
            contacts: size,
            companies: size.div_ceil(4),
            deals: size.div_ceil(2),
            private_app_token: Some(format!("pat-sandbox-{portal_id}")),
        }
    }
}

/// An impact.com account the fake accepts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImpactAccount {
    /// Account SID (Basic auth user name, and in the URL).
    pub account_sid: String,
    /// Auth token (Basic auth password).
    pub auth_token: String,
    /// Program (campaign) ids valid as `CampaignId`.
    pub program_ids: Vec<String>,
}

/// Where and how webhooks are delivered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookTarget {
    /// The target URL, exactly as configured in the app (it is signed as is).
    pub url: String,
    /// The (public) app's client secret: the signing key.
    pub client_secret: String,
    /// Private apps: portal → that app's client secret, which signs the
    /// portal's webhooks instead of `client_secret` (HubSpot signs a private
    /// app's webhooks with that app's secret only).
    #[serde(default)]
    pub portal_secrets: std::collections::BTreeMap<u64, String>,
    /// The app id put in every event.
    #[serde(default = "default_app_id")]
    pub app_id: u64,
    /// Concurrent requests per portal (HubSpot: 10).
    #[serde(default = "default_in_flight")]
    pub max_in_flight: usize,
    /// Events per request (HubSpot: 100).
    #[serde(default = "default_batch")]
    pub batch_size: usize,
}

fn default_app_id() -> u64 {
    4_242_424
}
fn default_in_flight() -> usize {
    10
}
fn default_batch() -> usize {
    100
}

impl WebhookTarget {
    /// HubSpot's defaults: 10 in flight, batches of 100.
    pub fn new(url: impl Into<String>, client_secret: impl Into<String>) -> WebhookTarget {
        WebhookTarget {
            url: url.into(),
            client_secret: client_secret.into(),
            portal_secrets: Default::default(),
            app_id: default_app_id(),
            max_in_flight: default_in_flight(),
            batch_size: default_batch(),
        }
    }
}

impl WebhookTarget {
    /// The same target, with `portal`'s webhooks signed by its private
    /// app's `secret`.
    pub fn with_portal_secret(mut self, portal: u64, secret: impl Into<String>) -> WebhookTarget {
        self.portal_secrets.insert(portal, secret.into());
        self
    }
}

impl Default for WebhookTarget {
    fn default() -> Self {
        WebhookTarget::new(
            "http://127.0.0.1:8080/webhooks/hubspot",
            "sandbox-client-secret",
        )
    }
}

/// Everything the sandbox needs to start.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// Fake HubSpot's listen address (port 0: any free port).
    pub hubspot_addr: SocketAddr,
    /// Fake impact.com's listen address.
    pub impact_addr: SocketAddr,
    /// Seed of all generated data: the same seed gives the same records.
    pub seed: u64,
    /// Portals to create.
    pub portals: Vec<PortalSeed>,
    /// impact.com accounts accepted.
    pub impact_accounts: Vec<ImpactAccount>,
    /// Where webhooks go (can also be set later on the handle, or through
    /// the Webhooks API's settings).
    pub webhook: Option<WebhookTarget>,
    /// The public app's id: the `{appId}` of the Webhooks API.
    pub app_id: u64,
    /// The developer account's API key the Webhooks API accepts (`hapikey`).
    pub developer_api_key: String,
    /// Which events are delivered: all (the default here, so tests need
    /// not subscribe) or only those the app subscribed to (HubSpot's
    /// behaviour, and the `sandbox` binary's default).
    pub webhook_subscriptions: SubscriptionMode,
    /// Per-portal budget per rolling 10 s; `None` turns limiting off.
    pub rate_limit_per_10s: Option<u32>,
    /// Added to every HubSpot API answer.
    pub hubspot_latency: Duration,
    /// Added to every impact.com answer.
    pub impact_latency: Duration,
    /// The public app's client id.
    pub oauth_client_id: String,
    /// The public app's client secret.
    pub oauth_client_secret: String,
    /// Lifetime of OAuth access tokens.
    pub access_token_ttl: Duration,
    /// Webhook request timeout (HubSpot: 5 s).
    pub webhook_timeout: Duration,
    /// Delay before each webhook retry; its length is the number of retries.
    pub webhook_retry_delays: Vec<Duration>,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        let local = SocketAddr::from(([127, 0, 0, 1], 0));
        SandboxConfig {
            hubspot_addr: local,
            impact_addr: local,
            seed: 42,
            portals: vec![PortalSeed::sized(1001, 20)],
            impact_accounts: vec![ImpactAccount {
                account_sid: "IRsandbox".into(),
                auth_token: "sandbox-token".into(),
                program_ids: vec!["1000".into()],
            }],
            webhook: None,
            app_id: default_app_id(),
            developer_api_key: "sandbox-developer-key".into(),
            webhook_subscriptions: SubscriptionMode::All,
            rate_limit_per_10s: Some(110),
            hubspot_latency: Duration::ZERO,
            impact_latency: Duration::ZERO,
            oauth_client_id: "sandbox-client-id".into(),
            oauth_client_secret: "sandbox-client-secret".into(),
            access_token_ttl: Duration::from_secs(1800),
            webhook_timeout: Duration::from_secs(5),
            webhook_retry_delays: [1, 2, 4, 8, 16, 32, 60, 60, 60, 60]
                .map(Duration::from_secs)
                .to_vec(),
        }
    }
}

/// Both fakes, running.
pub struct Sandbox {
    hubspot: FakeHubSpot,
    impact: FakeImpact,
    hubspot_server: serve::Server,
    impact_server: serve::Server,
}

impl Sandbox {
    /// Seeds the data and starts both servers.
    pub async fn start(cfg: SandboxConfig) -> anyhow::Result<Sandbox> {
        let hubspot = FakeHubSpot::new(&cfg);
        let impact = FakeImpact::new(&cfg);
        let hubspot_server = serve::Server::start(cfg.hubspot_addr, hubspot.router()).await?;
        let impact_server = serve::Server::start(cfg.impact_addr, impact.router()).await?;
        Ok(Sandbox {
            hubspot,
            impact,
            hubspot_server,
            impact_server,
        })
    }

    /// Base URL standing in for `https://api.hubapi.com` (CRM, OAuth token
    /// endpoints, and the authorize page at `/oauth/authorize`).
    pub fn hubspot_url(&self) -> String {
        format!("http://{}", self.hubspot_server.addr)
    }

    /// Base URL standing in for `https://api.impact.com`.
    pub fn impact_url(&self) -> String {
        format!("http://{}", self.impact_server.addr)
    }

    /// The fake HubSpot's handle.
    pub fn hubspot(&self) -> &FakeHubSpot {
        &self.hubspot
    }

    /// The fake impact.com's handle.
    pub fn impact(&self) -> &FakeImpact {
        &self.impact
    }

    /// Stops webhook deliveries and both servers.
    pub async fn shutdown(self) {
        self.hubspot.state.webhooks.shutdown();
        self.hubspot_server.stop().await;
        self.impact_server.stop().await;
    }
}

/// Locks a mutex, ignoring poisoning (a panicked test must not cascade).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Escapes text for HTML pages.
pub(crate) fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// Serde for durations as integer milliseconds.
pub(crate) mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}
