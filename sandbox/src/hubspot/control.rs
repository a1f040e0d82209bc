//! The HubSpot side's control API, JSON under `/_sandbox`: inspect and
//! change data, run webhook scenarios, set faults, uninstall.

// Handlers answer early with a ready `Response` as the error: its size is fine here.
#![allow(clippy::result_large_err)]

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::model::ObjectType;
use super::{FakeHubSpot, Props};
use crate::lock;

pub(crate) fn routes() -> Router<FakeHubSpot> {
    Router::new()
        .merge(super::control_delivery::routes())
        .merge(super::merges::routes())
        .route("/_sandbox", get(summary))
        .route(
            "/_sandbox/portals/{portal}/objects/{object_type}",
            post(create),
        )
        .route(
            "/_sandbox/portals/{portal}/objects/{object_type}/{id}",
            get(read).patch(update).delete(delete),
        )
        .route(
            "/_sandbox/portals/{portal}/objects/contacts/{id}/privacy-deletion",
            post(privacy_delete),
        )
        .route("/_sandbox/portals/{portal}/deals", post(create_deal))
        .route("/_sandbox/portals/{portal}/uninstall", post(uninstall))
        .route("/_sandbox/portals/{portal}/authorize", post(authorize))
        .route(
            "/_sandbox/portals/{portal}/expire-tokens",
            post(expire_tokens),
        )
        .route(
            "/_sandbox/portals/{portal}/scenarios/import-contacts",
            post(import_contacts),
        )
        .route(
            "/_sandbox/portals/{portal}/scenarios/deal-stage-stream",
            post(deal_stage_stream),
        )
}

fn fail(status: StatusCode, e: impl std::fmt::Display) -> Response {
    (status, Json(json!({"error": e.to_string()}))).into_response()
}

fn object_type(raw: &str) -> Result<ObjectType, Response> {
    ObjectType::parse(raw)
        .ok_or_else(|| fail(StatusCode::NOT_FOUND, format!("unknown object type {raw}")))
}

async fn summary(State(hub): State<FakeHubSpot>) -> Json<Value> {
    let portals: Vec<Value> = {
        let portals = lock(&hub.state.portals);
        portals
            .values()
            .map(|p| {
                let counts: serde_json::Map<String, Value> = ObjectType::ALL
                    .iter()
                    .map(|t| (t.as_path().to_string(), json!(p.live(*t).count())))
                    .collect();
                json!({
                    "portal_id": p.id,
                    "installed": p.installed,
                    "private_app_token": p.private_app_token,
                    "objects": counts,
                })
            })
            .collect()
    };
    let portals: Vec<Value> = portals
        .into_iter()
        .map(|mut p| {
            let id = p["portal_id"].as_u64().unwrap_or(0);
            p["api_calls"] = json!(hub.api_calls(id));
            p["rate_limited"] = json!(hub.rate_limited(id));
            p
        })
        .collect();
    let target = hub.webhook_target().map(|t| json!({"url": t.url, "app_id": t.app_id, "max_in_flight": t.max_in_flight, "batch_size": t.batch_size}));
    Json(json!({
        "portals": portals,
        "webhook": target,
        "webhook_stats": hub.webhook_stats(),
        "subscription_mode": hub.subscription_mode(),
        "faults": hub.faults(),
    }))
}

#[derive(Deserialize)]
struct CreateBody {
    #[serde(default)]
    properties: Props,
    /// `[{"type": "contacts", "id": 1000001}]`
    #[serde(default)]
    associations: Vec<AssocRef>,
}

#[derive(Deserialize)]
struct AssocRef {
    #[serde(rename = "type")]
    object_type: String,
    id: u64,
}

async fn create(
    State(hub): State<FakeHubSpot>,
    Path((portal, raw)): Path<(u64, String)>,
    Json(body): Json<CreateBody>,
) -> Response {
    let t = match object_type(&raw) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let mut assoc = Vec::new();
    for a in body.associations {
        match ObjectType::parse(&a.object_type) {
            Some(to) => assoc.push((to, a.id)),
            None => {
                return fail(
                    StatusCode::BAD_REQUEST,
                    format!("unknown object type {}", a.object_type),
                );
            }
        }
    }
    match hub.create_object(portal, t, body.properties, &assoc) {
        Ok(id) => (StatusCode::CREATED, Json(json!({"id": id.to_string()}))).into_response(),
        Err(e) => fail(StatusCode::BAD_REQUEST, e),
    }
}

async fn read(
    State(hub): State<FakeHubSpot>,
    Path((portal, raw, id)): Path<(u64, String, u64)>,
) -> Response {
    let t = match object_type(&raw) {
        Ok(t) => t,
        Err(r) => return r,
    };
    match hub.object(portal, t, id) {
        Some(o) => {
            let assoc: serde_json::Map<String, Value> = ObjectType::ALL
                .iter()
                .map(|to| {
                    (
                        to.as_path().to_string(),
                        json!(hub.associated(portal, t, id, *to)),
                    )
                })
                .collect();
            let mut v = json!(o);
            v["associations"] = Value::Object(assoc);
            Json(v).into_response()
        }
        None => fail(
            StatusCode::NOT_FOUND,
            format!("no {t} {id} in portal {portal}"),
        ),
    }
}

#[derive(Deserialize)]
struct UpdateBody {
    properties: Props,
}

async fn update(
    State(hub): State<FakeHubSpot>,
    Path((portal, raw, id)): Path<(u64, String, u64)>,
    Json(body): Json<UpdateBody>,
) -> Response {
    let t = match object_type(&raw) {
        Ok(t) => t,
        Err(r) => return r,
    };
    for (name, value) in &body.properties {
        if let Err(e) = hub.set_property(portal, t, id, name, value) {
            return fail(StatusCode::NOT_FOUND, e);
        }
    }
    Json(json!(hub.object(portal, t, id))).into_response()
}

async fn delete(
    State(hub): State<FakeHubSpot>,
    Path((portal, raw, id)): Path<(u64, String, u64)>,
) -> Response {
    let t = match object_type(&raw) {
        Ok(t) => t,
        Err(r) => return r,
    };
    match hub.delete_object(portal, t, id) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => fail(StatusCode::NOT_FOUND, e),
    }
}

async fn privacy_delete(
    State(hub): State<FakeHubSpot>,
    Path((portal, id)): Path<(u64, u64)>,
) -> Response {
    match hub.privacy_delete_contact(portal, id) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => fail(StatusCode::NOT_FOUND, e),
    }
}

#[derive(Deserialize)]
struct DealBody {
    #[serde(default)]
    properties: Props,
    #[serde(default)]
    line_items: Vec<Props>,
    contact_id: Option<u64>,
}

async fn create_deal(
    State(hub): State<FakeHubSpot>,
    Path(portal): Path<u64>,
    Json(body): Json<DealBody>,
) -> Response {
    match hub.create_deal(portal, body.properties, body.line_items, body.contact_id) {
        Ok(id) => (StatusCode::CREATED, Json(json!({"id": id.to_string()}))).into_response(),
        Err(e) => fail(StatusCode::BAD_REQUEST, e),
    }
}

async fn uninstall(State(hub): State<FakeHubSpot>, Path(portal): Path<u64>) -> Response {
    match hub.uninstall(portal) {
        Ok(()) => Json(json!({"portal_id": portal, "installed": false})).into_response(),
        Err(e) => fail(StatusCode::NOT_FOUND, e),
    }
}

#[derive(Deserialize)]
struct AuthorizeBody {
    redirect_uri: String,
    #[serde(default)]
    state: String,
}

async fn authorize(
    State(hub): State<FakeHubSpot>,
    Path(portal): Path<u64>,
    Json(body): Json<AuthorizeBody>,
) -> Response {
    let code = match hub.authorize(portal, &body.redirect_uri, &body.state) {
        Ok(c) => c,
        Err(e) => return fail(StatusCode::NOT_FOUND, e),
    };
    let redirect = url::Url::parse(&body.redirect_uri).map(|mut u| {
        u.query_pairs_mut()
            .append_pair("code", &code)
            .append_pair("state", &body.state);
        u.to_string()
    });
    Json(json!({"code": code, "redirect": redirect.ok()})).into_response()
}

async fn expire_tokens(State(hub): State<FakeHubSpot>, Path(portal): Path<u64>) -> StatusCode {
    hub.expire_access_tokens(portal);
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
struct ImportBody {
    count: usize,
}

async fn import_contacts(
    State(hub): State<FakeHubSpot>,
    Path(portal): Path<u64>,
    Json(body): Json<ImportBody>,
) -> Response {
    match hub.import_contacts(portal, body.count) {
        Ok(ids) => Json(json!({"ids": ids})).into_response(),
        Err(e) => fail(StatusCode::BAD_REQUEST, e),
    }
}

#[derive(Deserialize)]
struct StreamBody {
    deals: usize,
    stages: Vec<String>,
}

async fn deal_stage_stream(
    State(hub): State<FakeHubSpot>,
    Path(portal): Path<u64>,
    Json(body): Json<StreamBody>,
) -> Response {
    let stages: Vec<&str> = body.stages.iter().map(String::as_str).collect();
    match hub.deal_stage_stream(portal, body.deals, &stages) {
        Ok(ids) => Json(json!({"ids": ids})).into_response(),
        Err(e) => fail(StatusCode::BAD_REQUEST, e),
    }
}
