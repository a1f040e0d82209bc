//! The fake HubSpot: data, CRM API, account information, OAuth, limits and
//! webhooks.

mod account;
pub mod app;
mod assoc;
mod changes;
mod control;
mod control_delivery;
mod crm;
mod errors;
mod events;
mod limits;
mod merges;
pub mod model;
pub mod oauth;
mod oauth_routes;
mod object_type;
mod paging;
pub mod pipelines;
mod scenarios;
pub mod schema;
mod schema_routes;
mod search;
pub(crate) mod seed;
pub mod signing;
mod view;
pub mod webhooks;
mod webhooks_api;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, anyhow};
use axum::Router;
use chrono::{DateTime, Utc};

pub use app::{Subscription, SubscriptionMode};
pub use limits::FaultSettings;
pub use model::{CrmObject, ObjectType};
pub use oauth::HubUser;
pub use webhooks::{AssociationChange, DeliveryOptions, WebhookEvent, WebhookStats};

use super::{SandboxConfig, lock};
use model::Portal;

/// Property values by name.
pub type Props = BTreeMap<String, String>;

/// Builds [`Props`] from pairs: `props([("email", "a@example.com")])`.
pub fn props<K: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (K, V)>) -> Props {
    pairs
        .into_iter()
        .map(|(k, v)| (k.into(), v.into()))
        .collect()
}

pub(crate) struct HubState {
    pub(crate) portals: Mutex<BTreeMap<u64, Portal>>,
    pub(crate) oauth: Mutex<oauth::OAuthState>,
    pub(crate) limits: Mutex<limits::Limits>,
    pub(crate) webhooks: Arc<webhooks::Engine>,
    pub(crate) app: Mutex<app::App>,
    pub(crate) client_id: String,
    pub(crate) client_secret: String,
    pub(crate) access_token_ttl: Mutex<Duration>,
    pub(crate) token_hub_id: AtomicBool,
    pub(crate) token_faults: Mutex<oauth::TokenFaults>,
    pub(crate) scenario_seq: Mutex<u64>,
    pub(crate) paging: Mutex<paging::Paging>,
}

/// Handle on the fake HubSpot: read and change data, trigger webhook
/// scenarios, inject faults, read counters. Cheap to clone.
#[derive(Clone)]
pub struct FakeHubSpot {
    pub(crate) state: Arc<HubState>,
}

/// Where a change came from, as webhooks report it.
#[derive(Debug, Clone)]
pub(crate) struct Source {
    pub(crate) change_source: &'static str,
    pub(crate) source_id: Option<String>,
}

impl Source {
    pub(crate) fn crm() -> Source {
        Source {
            change_source: "CRM",
            source_id: Some("userId:1234567".into()),
        }
    }
}

/// A stable subscription id per subscription type (and property).
fn subscription_id(subscription_type: &str, property: Option<&str>) -> u64 {
    let key = format!("{subscription_type}:{}", property.unwrap_or(""));
    let hash = key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    100_000 + hash % 900_000
}

impl FakeHubSpot {
    pub(crate) fn new(cfg: &SandboxConfig) -> FakeHubSpot {
        let portals = cfg
            .portals
            .iter()
            .map(|p| (p.portal_id, seed::seed_portal(cfg.seed, p)))
            .collect();
        let timing = webhooks::Timing {
            timeout: cfg.webhook_timeout,
            retry_delays: cfg.webhook_retry_delays.clone(),
        };
        let state = HubState {
            portals: Mutex::new(portals),
            oauth: Mutex::default(),
            limits: Mutex::new(limits::Limits::new(
                cfg.rate_limit_per_10s,
                cfg.hubspot_latency,
            )),
            webhooks: webhooks::Engine::new(cfg.webhook.clone(), timing, cfg.seed),
            app: Mutex::new(app::App::new(
                cfg.app_id,
                cfg.developer_api_key.clone(),
                cfg.webhook_subscriptions,
            )),
            client_id: cfg.oauth_client_id.clone(),
            client_secret: cfg.oauth_client_secret.clone(),
            access_token_ttl: Mutex::new(cfg.access_token_ttl),
            token_hub_id: AtomicBool::new(true),
            token_faults: Mutex::default(),
            scenario_seq: Mutex::new(0),
            paging: Mutex::default(),
        };
        FakeHubSpot {
            state: Arc::new(state),
        }
    }

    /// The HTTP routes: CRM API, OAuth, the Webhooks API, and the
    /// `/_sandbox` control API.
    pub(crate) fn router(&self) -> Router {
        let api = crm::routes()
            .merge(search::routes())
            .merge(assoc::routes())
            .merge(schema_routes::routes())
            .merge(account::routes())
            .layer(axum::middleware::from_fn_with_state(
                self.clone(),
                limits::gate,
            ));
        Router::new()
            .merge(api)
            .merge(oauth_routes::routes())
            .merge(webhooks_api::routes())
            .merge(control::routes())
            .merge(account::control_routes())
            .with_state(self.clone())
    }

    pub(crate) fn with_portal<T>(
        &self,
        portal: u64,
        f: impl FnOnce(&mut Portal) -> T,
    ) -> anyhow::Result<T> {
        let mut portals = lock(&self.state.portals);
        let p = portals
            .get_mut(&portal)
            .ok_or_else(|| anyhow!("unknown portal {portal}"))?;
        Ok(f(p))
    }

    pub(crate) fn event(
        &self,
        portal: u64,
        (t, object_id): (ObjectType, u64),
        kind: &str,
        at: DateTime<Utc>,
        source: &Source,
        property: Option<(&str, &str)>,
    ) -> WebhookEvent {
        let subscription_type = format!("{}.{kind}", t.singular());
        let engine = &self.state.webhooks;
        WebhookEvent {
            event_id: engine.next_event_id(),
            subscription_id: subscription_id(&subscription_type, property.map(|p| p.0)),
            portal_id: portal,
            app_id: engine.app_id(),
            occurred_at: at.timestamp_millis(),
            subscription_type,
            attempt_number: 0,
            object_id,
            property_name: property.map(|p| p.0.to_string()),
            property_value: property.map(|p| p.1.to_string()),
            change_source: source.change_source.to_string(),
            change_flag: match kind {
                "creation" => Some("NEW".into()),
                "deletion" => Some("DELETED".into()),
                _ => None,
            },
            source_id: source.source_id.clone(),
            primary_object_id: None,
            merged_object_ids: Vec::new(),
            new_object_id: None,
            number_of_properties_moved: None,
            association: None,
        }
    }

    /// Hands the events the app subscribed to (see [`app`]) to the delivery
    /// engine; portals without the app installed get none.
    pub(crate) fn emit(&self, events: Vec<WebhookEvent>) {
        let events = self.subscribed(events);
        let silent: Vec<u64> = lock(&self.state.portals)
            .values()
            .filter(|p| !p.installed)
            .map(|p| p.id)
            .collect();
        self.state.webhooks.emit(events, &silent);
    }

    /// The portal ids, ascending.
    pub fn portal_ids(&self) -> Vec<u64> {
        lock(&self.state.portals).keys().copied().collect()
    }

    /// Adds an empty portal (no records), installed, with an optional private-app token.
    pub fn add_portal(&self, portal: u64, private_app_token: Option<String>) {
        lock(&self.state.portals)
            .entry(portal)
            .or_insert_with(|| Portal::new(portal, private_app_token));
    }

    /// The one-time OAuth code a user would get by approving the app for
    /// `portal` on the authorize page (all default scopes). The portal counts
    /// as (re)installed.
    pub fn authorize(
        &self,
        portal: u64,
        redirect_uri: &str,
        state: &str,
    ) -> anyhow::Result<String> {
        self.authorize_as(portal, redirect_uri, state, HubUser::default())
    }

    /// As [`Self::authorize`], approved by HubSpot user `user` (whom the
    /// token's introspection then names).
    pub fn authorize_as(
        &self,
        portal: u64,
        redirect_uri: &str,
        state: &str,
        user: HubUser,
    ) -> anyhow::Result<String> {
        let _ = state; // the page puts it in the redirect; the code does not depend on it
        self.authorize_scopes(portal, user, redirect_uri, Vec::new())
    }

    pub(crate) fn authorize_scopes(
        &self,
        portal: u64,
        user: HubUser,
        redirect_uri: &str,
        scopes: Vec<String>,
    ) -> anyhow::Result<String> {
        self.with_portal(portal, |p| p.installed = true)
            .context("authorize")?;
        Ok(lock(&self.state.oauth).authorize(portal, user, redirect_uri, scopes))
    }

    /// Uninstalls the app from `portal`: its OAuth tokens stop working and
    /// refreshing answers `invalid_grant` / `BAD_REFRESH_TOKEN`.
    pub fn uninstall(&self, portal: u64) -> anyhow::Result<()> {
        self.with_portal(portal, |p| p.installed = false)?;
        lock(&self.state.oauth).uninstall(portal);
        Ok(())
    }

    /// Whether the public app is installed on `portal`.
    pub fn is_installed(&self, portal: u64) -> bool {
        lock(&self.state.portals)
            .get(&portal)
            .is_some_and(|p| p.installed)
    }

    /// Makes the portal's current access tokens expired (refresh still works).
    pub fn expire_access_tokens(&self, portal: u64) {
        lock(&self.state.oauth).expire_access(portal);
    }

    /// Lifetime of access tokens issued from now on.
    pub fn set_access_token_ttl(&self, ttl: Duration) {
        *lock(&self.state.access_token_ttl) = ttl;
    }

    /// Delay before the token endpoint answers (slow refreshes).
    pub fn set_token_latency(&self, latency: Duration) {
        lock(&self.state.token_faults).latency = latency;
    }

    /// Whether a refresh issues a new refresh token and retires the one it
    /// was given (rotation; HubSpot may rotate refresh tokens).
    pub fn set_rotate_refresh_tokens(&self, rotate: bool) {
        lock(&self.state.token_faults).rotate = rotate;
    }

    /// Refreshes granted so far (`grant_type=refresh_token` answered 200).
    pub fn token_refreshes(&self) -> u64 {
        lock(&self.state.token_faults).refreshes
    }

    /// Whether token responses carry `hub_id` (the doc says it may not:
    /// turn off to check that a client introspects).
    pub fn set_token_response_hub_id(&self, include: bool) {
        self.state.token_hub_id.store(include, Ordering::Relaxed);
    }
}
