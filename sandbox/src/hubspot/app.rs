//! The public app's webhook subscriptions, as HubSpot's Webhooks API
//! manages them (`webhooks_api`), and which events they let through: an
//! event is delivered when an active subscription has its type (and, for
//! `propertyChange`, its property), and carries that subscription's id.
//!
//! [`SubscriptionMode::All`] (the library's default, so tests receive every
//! event without subscribing first) delivers every event as if the app
//! subscribed to everything; [`SubscriptionMode::AsSubscribed`] (the
//! `sandbox` binary's default) is HubSpot's behaviour.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{FakeHubSpot, WebhookEvent};
use crate::{WebhookTarget, lock};

/// Which events reach the webhook target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionMode {
    /// Every event, as if every type and property were subscribed.
    #[default]
    All,
    /// Only events an active subscription of the app covers (HubSpot).
    AsSubscribed,
}

/// One subscription of the app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// Its id.
    pub id: u64,
    /// e.g. `deal.propertyChange`.
    pub event_type: String,
    /// The property of a `propertyChange` subscription.
    pub property_name: Option<String>,
    /// Paused: `false`.
    pub active: bool,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// The objects of HubSpot's classic subscription types.
const OBJECTS: [&str; 6] = [
    "contact",
    "company",
    "deal",
    "ticket",
    "product",
    "line_item",
];

/// Whether HubSpot's Webhooks API knows `event_type` (the event types of
/// its reference and official clients).
pub(crate) fn known_event_type(event_type: &str) -> bool {
    let Some((object, kind)) = event_type.split_once('.') else {
        return false;
    };
    match object {
        "conversation" => matches!(
            kind,
            "creation" | "deletion" | "newMessage" | "privacyDeletion" | "propertyChange"
        ),
        "contact" if kind == "privacyDeletion" => true,
        "product" if kind == "associationChange" => false,
        o if OBJECTS.contains(&o) => matches!(
            kind,
            "creation" | "deletion" | "propertyChange" | "merge" | "restore" | "associationChange"
        ),
        _ => false,
    }
}

pub(crate) struct App {
    pub(crate) app_id: u64,
    pub(crate) developer_api_key: String,
    pub(crate) mode: SubscriptionMode,
    pub(crate) subscriptions: Vec<Subscription>,
    /// Settings' creation and update times, and the throttling period.
    pub(crate) settings_meta: (DateTime<Utc>, DateTime<Utc>, String),
    next_id: u64,
}

impl App {
    pub(crate) fn new(app_id: u64, developer_api_key: String, mode: SubscriptionMode) -> App {
        let now = Utc::now();
        App {
            app_id,
            developer_api_key,
            mode,
            subscriptions: Vec::new(),
            settings_meta: (now, now, "SECONDLY".into()),
            next_id: 1_000,
        }
    }

    /// The active subscription an event matches.
    fn matching(&self, e: &WebhookEvent) -> Option<&Subscription> {
        self.subscriptions.iter().find(|s| {
            s.active
                && s.event_type == e.subscription_type
                && (s.property_name.is_none() || s.property_name == e.property_name)
        })
    }

    /// Whether `e` is delivered; its `subscriptionId` becomes the matching one's.
    pub(crate) fn admit(&self, e: &mut WebhookEvent) -> bool {
        match self.matching(e) {
            Some(s) => {
                e.subscription_id = s.id;
                true
            }
            None => self.mode == SubscriptionMode::All,
        }
    }

    /// Validates and adds a subscription, as HubSpot does.
    pub(crate) fn create(
        &mut self,
        event_type: &str,
        property_name: Option<String>,
        active: bool,
    ) -> Result<Subscription, String> {
        if !known_event_type(event_type) {
            return Err(format!("Unknown event type: {event_type}"));
        }
        let property_name = property_name.filter(|p| !p.trim().is_empty());
        let is_change = event_type.ends_with(".propertyChange");
        match (&property_name, is_change) {
            (None, true) => {
                return Err(format!(
                    "propertyName is required for {event_type} subscriptions"
                ));
            }
            (Some(_), false) => {
                return Err(format!(
                    "propertyName only applies to propertyChange subscriptions, not {event_type}"
                ));
            }
            _ => {}
        }
        if self
            .subscriptions
            .iter()
            .any(|s| s.event_type == event_type && s.property_name == property_name)
        {
            return Err(format!(
                "A subscription for {event_type}{} already exists",
                property_name
                    .as_deref()
                    .map(|p| format!(" of {p}"))
                    .unwrap_or_default()
            ));
        }
        let now = Utc::now();
        self.next_id += 1;
        let s = Subscription {
            id: self.next_id,
            event_type: event_type.to_owned(),
            property_name,
            active,
            created_at: now,
            updated_at: now,
        };
        self.subscriptions.push(s.clone());
        Ok(s)
    }

    pub(crate) fn set_active(&mut self, id: u64, active: bool) -> Option<Subscription> {
        let s = self.subscriptions.iter_mut().find(|s| s.id == id)?;
        if s.active != active {
            s.active = active;
            s.updated_at = Utc::now();
        }
        Some(s.clone())
    }

    pub(crate) fn delete(&mut self, id: u64) -> bool {
        let before = self.subscriptions.len();
        self.subscriptions.retain(|s| s.id != id);
        self.subscriptions.len() != before
    }
}

impl FakeHubSpot {
    /// The app's subscriptions, in creation order.
    pub fn app_subscriptions(&self) -> Vec<Subscription> {
        lock(&self.state.app).subscriptions.clone()
    }

    /// Which events reach the webhook target.
    pub fn subscription_mode(&self) -> SubscriptionMode {
        lock(&self.state.app).mode
    }

    /// Sets which events reach the webhook target from now on.
    pub fn set_subscription_mode(&self, mode: SubscriptionMode) {
        lock(&self.state.app).mode = mode;
    }

    /// Adds an active subscription, validated as the Webhooks API does.
    pub fn subscribe(&self, event_type: &str, property_name: Option<&str>) -> anyhow::Result<u64> {
        lock(&self.state.app)
            .create(event_type, property_name.map(str::to_owned), true)
            .map(|s| s.id)
            .map_err(anyhow::Error::msg)
    }

    /// The events an app subscription lets through, with its id; the
    /// others are counted as unsubscribed and dropped, as HubSpot never
    /// sends them.
    pub(crate) fn subscribed(&self, events: Vec<WebhookEvent>) -> Vec<WebhookEvent> {
        let app = lock(&self.state.app);
        let before = events.len();
        let kept: Vec<WebhookEvent> = events
            .into_iter()
            .filter_map(|mut e| app.admit(&mut e).then_some(e))
            .collect();
        drop(app);
        self.state
            .webhooks
            .count_unsubscribed((before - kept.len()) as u64);
        kept
    }

    /// Applies settings from the Webhooks API to the delivery target: the
    /// URL and concurrency change, the signing secret and app id stay.
    pub(crate) fn apply_app_settings(&self, url: String, max_in_flight: usize, period: String) {
        let now = Utc::now();
        let target = match self.webhook_target() {
            Some(t) => WebhookTarget {
                url,
                max_in_flight,
                ..t
            },
            None => {
                lock(&self.state.app).settings_meta.0 = now;
                WebhookTarget {
                    app_id: lock(&self.state.app).app_id,
                    max_in_flight,
                    ..WebhookTarget::new(url, self.state.client_secret.clone())
                }
            }
        };
        {
            let mut app = lock(&self.state.app);
            app.settings_meta.1 = now;
            app.settings_meta.2 = period;
        }
        self.set_webhook_target(Some(target));
    }
}
