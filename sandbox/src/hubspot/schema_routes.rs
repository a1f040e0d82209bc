//! Schema reads: properties and deal pipelines.

// Handlers answer early with a ready `Response` as the error: its size is fine here.
#![allow(clippy::result_large_err)]

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde_json::{Value, json};

use super::limits::Caller;
use super::model::ObjectType;
use super::view::object_type;
use super::{FakeHubSpot, errors, schema};
use crate::lock;

pub(crate) fn routes() -> Router<FakeHubSpot> {
    Router::new()
        .route("/crm/v3/properties/{object_type}", get(properties))
        .route("/crm/v3/properties/{object_type}/{name}", get(property))
        .route("/crm/v3/pipelines/{object_type}", get(pipelines))
        .route("/crm/v3/pipelines/{object_type}/{pipeline}", get(pipeline))
        .route(
            "/crm/v3/pipelines/{object_type}/{pipeline}/stages",
            get(stages),
        )
}

async fn properties(
    State(hub): State<FakeHubSpot>,
    Extension(caller): Extension<Caller>,
    Path(raw_type): Path<String>,
) -> Response {
    let t = match object_type(&raw_type) {
        Ok(t) => t,
        Err(resp) => return resp,
    };
    let portals = lock(&hub.state.portals);
    let defs = portals
        .get(&caller.portal)
        .and_then(|p| p.properties.get(&t))
        .cloned()
        .unwrap_or_default();
    let results: Vec<Value> = defs.iter().enumerate().map(|(i, d)| d.to_json(i)).collect();
    Json(json!({"results": results})).into_response()
}

async fn property(
    State(hub): State<FakeHubSpot>,
    Extension(caller): Extension<Caller>,
    Path((raw_type, name)): Path<(String, String)>,
) -> Response {
    let t = match object_type(&raw_type) {
        Ok(t) => t,
        Err(resp) => return resp,
    };
    let portals = lock(&hub.state.portals);
    let defs = portals
        .get(&caller.portal)
        .and_then(|p| p.properties.get(&t));
    match defs.and_then(|d| d.iter().enumerate().find(|(_, p)| p.name == name)) {
        Some((i, d)) => Json(d.to_json(i)).into_response(),
        None => errors::error(
            StatusCode::NOT_FOUND,
            "OBJECT_NOT_FOUND",
            format!("Unable to find property {name} for object type {t}"),
            None,
        ),
    }
}

fn deals_only(raw_type: &str) -> Result<(), Response> {
    match ObjectType::parse(raw_type) {
        Some(ObjectType::Deals) => Ok(()),
        _ => Err(errors::error(
            StatusCode::BAD_REQUEST,
            "VALIDATION_ERROR",
            format!("Unknown object type {raw_type}"),
            None,
        )),
    }
}

async fn pipelines(Path(raw_type): Path<String>) -> Response {
    if let Err(resp) = deals_only(&raw_type) {
        return resp;
    }
    let results: Vec<Value> = schema::PIPELINES
        .iter()
        .enumerate()
        .map(|(i, p)| schema::pipeline_json(p, i))
        .collect();
    Json(json!({"results": results})).into_response()
}

async fn pipeline(Path((raw_type, id)): Path<(String, String)>) -> Response {
    if let Err(resp) = deals_only(&raw_type) {
        return resp;
    }
    match schema::PIPELINES
        .iter()
        .enumerate()
        .find(|(_, p)| p.id == id)
    {
        Some((i, p)) => Json(schema::pipeline_json(p, i)).into_response(),
        None => errors::not_found(&id),
    }
}

async fn stages(Path((raw_type, id)): Path<(String, String)>) -> Response {
    if let Err(resp) = deals_only(&raw_type) {
        return resp;
    }
    match schema::PIPELINES.iter().find(|p| p.id == id) {
        Some(p) => {
            let results: Vec<Value> = p
                .stages
                .iter()
                .enumerate()
                .map(|(i, s)| schema::stage_json(s, i))
                .collect();
            Json(json!({"results": results})).into_response()
        }
        None => errors::not_found(&id),
    }
}
