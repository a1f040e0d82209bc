//! HubSpot's Webhooks API (v3) for the public app, authenticated with the
//! developer account's API key in the `hapikey` query parameter:
//! `GET|PUT|DELETE /webhooks/v3/{appId}/settings`,
//! `GET|POST /webhooks/v3/{appId}/subscriptions`,
//! `GET|PATCH|DELETE /webhooks/v3/{appId}/subscriptions/{id}`,
//! `POST /webhooks/v3/{appId}/subscriptions/batch/update`.
//! Settings set the webhook target (URL, concurrency); subscriptions
//! decide which events are delivered (see `app`).

// Handlers answer early with a ready `Response` as the error: its size is fine here.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use super::app::Subscription;
use super::{FakeHubSpot, errors};
use crate::lock;

pub(crate) fn routes() -> Router<FakeHubSpot> {
    Router::new()
        .route(
            "/webhooks/v3/{app}/settings",
            get(get_settings).put(put_settings).delete(delete_settings),
        )
        .route("/webhooks/v3/{app}/subscriptions", get(list).post(create))
        .route(
            "/webhooks/v3/{app}/subscriptions/batch/update",
            post(batch_update),
        )
        .route(
            "/webhooks/v3/{app}/subscriptions/{id}",
            get(read).patch(update).delete(archive),
        )
}

type Params = Query<HashMap<String, String>>;

fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn subscription_json(s: &Subscription) -> Value {
    let mut v = json!({
        "id": s.id.to_string(),
        "eventType": s.event_type,
        "active": s.active,
        "createdAt": iso(s.created_at),
        "updatedAt": iso(s.updated_at),
    });
    if let Some(p) = &s.property_name {
        v["propertyName"] = json!(p);
    }
    v
}

/// The developer API key, then the app: 401 without a valid key, 404 for
/// another app id.
fn authorize(
    hub: &FakeHubSpot,
    app: &str,
    params: &HashMap<String, String>,
) -> Result<(), Response> {
    let (app_id, key) = {
        let a = lock(&hub.state.app);
        (a.app_id, a.developer_api_key.clone())
    };
    match params.get("hapikey") {
        Some(k) if *k == key => {}
        Some(_) => {
            return Err(errors::error(
                StatusCode::UNAUTHORIZED,
                "INVALID_AUTHENTICATION",
                "The API key provided is invalid. View or manage your API key here: https://app.hubspot.com/l/api-key/",
                None,
            ));
        }
        None => {
            return Err(errors::error(
                StatusCode::UNAUTHORIZED,
                "INVALID_AUTHENTICATION",
                "Authentication credentials not found. This API supports the developer API key (hapikey).",
                None,
            ));
        }
    }
    if app.parse::<u64>().ok() != Some(app_id) {
        return Err(errors::error(
            StatusCode::NOT_FOUND,
            "OBJECT_NOT_FOUND",
            format!("App {app} not found for this developer account"),
            None,
        ));
    }
    Ok(())
}

fn settings_json(hub: &FakeHubSpot) -> Option<Value> {
    let target = hub.webhook_target()?;
    let (created, updated, period) = lock(&hub.state.app).settings_meta.clone();
    Some(json!({
        "targetUrl": target.url,
        "throttling": {"maxConcurrentRequests": target.max_in_flight, "period": period},
        "createdAt": iso(created),
        "updatedAt": iso(updated),
    }))
}

async fn get_settings(
    State(hub): State<FakeHubSpot>,
    Path(app): Path<String>,
    Query(params): Params,
) -> Response {
    if let Err(r) = authorize(&hub, &app, &params) {
        return r;
    }
    match settings_json(&hub) {
        Some(v) => Json(v).into_response(),
        None => errors::error(
            StatusCode::NOT_FOUND,
            "OBJECT_NOT_FOUND",
            format!("No webhook settings found for app {app}"),
            None,
        ),
    }
}

fn parse(body: &Bytes) -> Result<Value, Response> {
    serde_json::from_slice::<Value>(body)
        .ok()
        .filter(Value::is_object)
        .ok_or_else(|| errors::validation("Invalid input JSON: expected an object"))
}

async fn put_settings(
    State(hub): State<FakeHubSpot>,
    Path(app): Path<String>,
    Query(params): Params,
    body: Bytes,
) -> Response {
    if let Err(r) = authorize(&hub, &app, &params) {
        return r;
    }
    let v = match parse(&body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let url = v["targetUrl"].as_str().unwrap_or_default();
    if !url::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "http" | "https")) {
        return errors::validation(format!("targetUrl must be an absolute URL, not {:?}", url));
    }
    let Some(max) = v["throttling"]["maxConcurrentRequests"].as_u64() else {
        return errors::validation("throttling.maxConcurrentRequests is required");
    };
    if max < 5 {
        return errors::validation("throttling.maxConcurrentRequests must be at least 5");
    }
    let period = v["throttling"]["period"].as_str().unwrap_or("SECONDLY");
    if !matches!(period, "SECONDLY" | "ROLLING_MINUTE") {
        return errors::validation(format!(
            "throttling.period must be SECONDLY or ROLLING_MINUTE, not {period}"
        ));
    }
    let max = usize::try_from(max).unwrap_or(usize::MAX);
    hub.apply_app_settings(url.to_owned(), max, period.to_owned());
    Json(settings_json(&hub).unwrap_or(Value::Null)).into_response()
}

async fn delete_settings(
    State(hub): State<FakeHubSpot>,
    Path(app): Path<String>,
    Query(params): Params,
) -> Response {
    if let Err(r) = authorize(&hub, &app, &params) {
        return r;
    }
    hub.set_webhook_target(None);
    StatusCode::NO_CONTENT.into_response()
}

async fn list(
    State(hub): State<FakeHubSpot>,
    Path(app): Path<String>,
    Query(params): Params,
) -> Response {
    if let Err(r) = authorize(&hub, &app, &params) {
        return r;
    }
    let results: Vec<Value> = hub
        .app_subscriptions()
        .iter()
        .map(subscription_json)
        .collect();
    Json(json!({ "results": results })).into_response()
}

async fn create(
    State(hub): State<FakeHubSpot>,
    Path(app): Path<String>,
    Query(params): Params,
    body: Bytes,
) -> Response {
    if let Err(r) = authorize(&hub, &app, &params) {
        return r;
    }
    let v = match parse(&body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let Some(event_type) = v["eventType"].as_str() else {
        return errors::validation("eventType is required");
    };
    let property = v["propertyName"].as_str().map(str::to_owned);
    // HubSpot's default: a new subscription is paused unless asked otherwise.
    let active = v["active"].as_bool().unwrap_or(false);
    let created = lock(&hub.state.app).create(event_type, property, active);
    match created {
        Ok(s) => (StatusCode::CREATED, Json(subscription_json(&s))).into_response(),
        Err(message) => errors::validation(message),
    }
}

fn subscription_id(raw: &str) -> Result<u64, Response> {
    raw.parse()
        .map_err(|_| errors::validation(format!("subscriptionId must be an integer, not {raw}")))
}

fn unknown(id: u64) -> Response {
    errors::error(
        StatusCode::NOT_FOUND,
        "OBJECT_NOT_FOUND",
        format!("Subscription {id} not found"),
        None,
    )
}

async fn read(
    State(hub): State<FakeHubSpot>,
    Path((app, id)): Path<(String, String)>,
    Query(params): Params,
) -> Response {
    if let Err(r) = authorize(&hub, &app, &params) {
        return r;
    }
    let id = match subscription_id(&id) {
        Ok(id) => id,
        Err(r) => return r,
    };
    match hub.app_subscriptions().iter().find(|s| s.id == id) {
        Some(s) => Json(subscription_json(s)).into_response(),
        None => unknown(id),
    }
}

async fn update(
    State(hub): State<FakeHubSpot>,
    Path((app, id)): Path<(String, String)>,
    Query(params): Params,
    body: Bytes,
) -> Response {
    if let Err(r) = authorize(&hub, &app, &params) {
        return r;
    }
    let (id, v) = match (subscription_id(&id), parse(&body)) {
        (Ok(id), Ok(v)) => (id, v),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    let Some(active) = v["active"].as_bool() else {
        return errors::validation("active (a boolean) is required");
    };
    let updated = lock(&hub.state.app).set_active(id, active);
    match updated {
        Some(s) => Json(subscription_json(&s)).into_response(),
        None => unknown(id),
    }
}

async fn archive(
    State(hub): State<FakeHubSpot>,
    Path((app, id)): Path<(String, String)>,
    Query(params): Params,
) -> Response {
    if let Err(r) = authorize(&hub, &app, &params) {
        return r;
    }
    let id = match subscription_id(&id) {
        Ok(id) => id,
        Err(r) => return r,
    };
    if lock(&hub.state.app).delete(id) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        unknown(id)
    }
}

async fn batch_update(
    State(hub): State<FakeHubSpot>,
    Path(app): Path<String>,
    Query(params): Params,
    body: Bytes,
) -> Response {
    if let Err(r) = authorize(&hub, &app, &params) {
        return r;
    }
    let v = match parse(&body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let Some(inputs) = v["inputs"].as_array() else {
        return errors::validation("inputs is required");
    };
    let started = Utc::now();
    let (mut results, mut failed) = (Vec::new(), Vec::new());
    for input in inputs {
        let (Some(id), Some(active)) = (input["id"].as_u64(), input["active"].as_bool()) else {
            return errors::validation("each input needs an integer id and a boolean active");
        };
        match lock(&hub.state.app).set_active(id, active) {
            Some(s) => results.push(subscription_json(&s)),
            None => failed.push(id.to_string()),
        }
    }
    let mut out = json!({
        "status": "COMPLETE",
        "results": results,
        "startedAt": iso(started),
        "completedAt": iso(Utc::now()),
    });
    if failed.is_empty() {
        return Json(out).into_response();
    }
    out["numErrors"] = json!(1);
    out["errors"] = json!([{
        "status": "error",
        "category": "OBJECT_NOT_FOUND",
        "message": "Some subscriptions were not found",
        "context": {"ids": failed},
    }]);
    (StatusCode::MULTI_STATUS, Json(out)).into_response()
}
