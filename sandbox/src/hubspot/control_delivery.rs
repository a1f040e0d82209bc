//! Control API for faults and webhook delivery: `/_sandbox/faults`,
//! `/_sandbox/webhook`, `/_sandbox/delivery`, `/_sandbox/webhooks`,
//! `/_sandbox/subscriptions`.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::FakeHubSpot;
use super::app::SubscriptionMode;
use super::webhooks::DeliveryOptions;
use crate::WebhookTarget;

pub(crate) fn routes() -> Router<FakeHubSpot> {
    Router::new()
        .route("/_sandbox/faults", put(faults))
        .route("/_sandbox/webhook", put(set_webhook).delete(clear_webhook))
        .route("/_sandbox/delivery", put(delivery))
        .route("/_sandbox/webhooks", get(webhooks))
        .route(
            "/_sandbox/subscriptions",
            get(subscriptions).put(subscription_mode),
        )
}

#[derive(Deserialize)]
struct FaultsBody {
    latency_ms: Option<u64>,
    error_rate: Option<f64>,
    outage_ms: Option<u64>,
    /// `0` turns the limit off.
    rate_limit_per_10s: Option<u32>,
}

async fn faults(State(hub): State<FakeHubSpot>, Json(body): Json<FaultsBody>) -> Json<Value> {
    if let Some(ms) = body.latency_ms {
        hub.set_latency(Duration::from_millis(ms));
    }
    if let Some(rate) = body.error_rate {
        hub.set_error_rate(rate);
    }
    if let Some(ms) = body.outage_ms {
        hub.outage(Duration::from_millis(ms));
    }
    if let Some(limit) = body.rate_limit_per_10s {
        hub.set_rate_limit((limit > 0).then_some(limit));
    }
    Json(json!(hub.faults()))
}

async fn set_webhook(
    State(hub): State<FakeHubSpot>,
    Json(target): Json<WebhookTarget>,
) -> StatusCode {
    hub.set_webhook_target(Some(target));
    StatusCode::NO_CONTENT
}

async fn clear_webhook(State(hub): State<FakeHubSpot>) -> StatusCode {
    hub.set_webhook_target(None);
    StatusCode::NO_CONTENT
}

async fn delivery(
    State(hub): State<FakeHubSpot>,
    Json(options): Json<DeliveryOptions>,
) -> StatusCode {
    hub.set_delivery_options(options);
    StatusCode::NO_CONTENT
}

async fn webhooks(State(hub): State<FakeHubSpot>) -> Json<Value> {
    let delivered = hub.delivered_events();
    let tail: Vec<_> = delivered.iter().rev().take(200).collect();
    Json(json!({"stats": hub.webhook_stats(), "last_delivered": tail}))
}

/// The app's subscriptions and which events are delivered.
async fn subscriptions(State(hub): State<FakeHubSpot>) -> Json<Value> {
    let subs: Vec<Value> = hub
        .app_subscriptions()
        .iter()
        .map(|s| json!({"id": s.id, "eventType": s.event_type, "propertyName": s.property_name, "active": s.active}))
        .collect();
    Json(json!({"mode": hub.subscription_mode(), "subscriptions": subs}))
}

#[derive(Deserialize)]
struct ModeBody {
    mode: SubscriptionMode,
}

/// `{"mode": "all"}` (every event) or `{"mode": "as_subscribed"}` (HubSpot's behaviour).
async fn subscription_mode(
    State(hub): State<FakeHubSpot>,
    Json(body): Json<ModeBody>,
) -> StatusCode {
    hub.set_subscription_mode(body.mode);
    StatusCode::NO_CONTENT
}
