//! Associations v4: one record's associations (paged) and the batch read
//! (each row paged on its own, continued with `{"id", "after"}` inputs).

// Handlers answer early with a ready `Response` as the error: its size is fine here.
#![allow(clippy::result_large_err)]

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use chrono::Utc;
use serde_json::{Value, json};

use super::limits::Caller;
use super::model::{ObjectType, association_type, iso};
use super::view::Query;
use super::{FakeHubSpot, errors};
use crate::lock;

const MAX_PAGE: usize = 500;
const MAX_BATCH: usize = 1_000;

pub(crate) fn routes() -> Router<FakeHubSpot> {
    Router::new()
        .route("/crm/v4/objects/{from}/{id}/associations/{to}", get(one))
        .route("/crm/v4/associations/{from}/{to}/batch/read", post(batch))
}

fn types(from: &str, to: &str) -> Result<(ObjectType, ObjectType), Response> {
    match (ObjectType::parse(from), ObjectType::parse(to)) {
        (Some(f), Some(t)) => Ok((f, t)),
        _ => Err(errors::error(
            StatusCode::BAD_REQUEST,
            "VALIDATION_ERROR",
            format!("Unknown object type in {from} -> {to}"),
            None,
        )),
    }
}

fn association_types(from: ObjectType, to: ObjectType) -> Value {
    let (type_id, _) = association_type(from, to);
    json!([{"category": "HUBSPOT_DEFINED", "typeId": type_id, "label": null}])
}

async fn one(
    State(hub): State<FakeHubSpot>,
    Extension(caller): Extension<Caller>,
    Path((from, id, to)): Path<(String, String, String)>,
    RawQuery(raw): RawQuery,
) -> Response {
    let (from, to) = match types(&from, &to) {
        Ok(t) => t,
        Err(resp) => return resp,
    };
    let q = Query::parse(raw);
    let limit = q
        .one("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(MAX_PAGE)
        .clamp(1, MAX_PAGE);
    let after: u64 = q.one("after").and_then(|a| a.parse().ok()).unwrap_or(0);
    let ids = {
        let portals = lock(&hub.state.portals);
        let id: u64 = id.parse().unwrap_or(0);
        portals
            .get(&caller.portal)
            .map(|p| p.associated((from, p.resolve(from, id)), to))
            .unwrap_or_default()
    };
    let mut page: Vec<u64> = ids
        .into_iter()
        .filter(|i| *i > after)
        .take(limit + 1)
        .collect();
    let more = page.len() > limit;
    if more {
        page.pop();
    }
    let results: Vec<Value> = page
        .iter()
        .map(|i| json!({"toObjectId": i, "associationTypes": association_types(from, to)}))
        .collect();
    let mut body = json!({"results": results});
    if let (true, Some(last)) = (more, page.last()) {
        body["paging"] =
            json!({"next": {"after": last.to_string(), "link": format!("?after={last}")}});
    }
    Json(body).into_response()
}

async fn batch(
    State(hub): State<FakeHubSpot>,
    Extension(caller): Extension<Caller>,
    Path((from_raw, to_raw)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    let (from, to) = match types(&from_raw, &to_raw) {
        Ok(t) => t,
        Err(resp) => return resp,
    };
    let started = Utc::now();
    let Some(inputs) = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("inputs").and_then(Value::as_array).cloned())
    else {
        return errors::validation("Invalid input JSON: `inputs` is required");
    };
    if inputs.len() > MAX_BATCH {
        return errors::validation(format!(
            "Batch input size {} exceeds the maximum of {MAX_BATCH} inputs per request",
            inputs.len()
        ));
    }
    let per_row = hub.paging().associations_per_row;
    let portals = lock(&hub.state.portals);
    let mut results = Vec::new();
    let mut errs = Vec::new();
    for input in &inputs {
        let text = |v: Option<&Value>| match v {
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => String::new(),
        };
        let id = text(input.get("id"));
        // `after`: the cursor of the row's previous page.
        let after: u64 = text(input.get("after")).parse().unwrap_or(0);
        let mut ids: Vec<u64> = portals
            .get(&caller.portal)
            .zip(id.parse::<u64>().ok())
            .map(|(p, n)| p.associated((from, p.resolve(from, n)), to))
            .unwrap_or_default()
            .into_iter()
            .filter(|i| *i > after)
            .collect();
        if ids.is_empty() {
            errs.push(json!({
                "status": "error",
                "category": "OBJECT_NOT_FOUND",
                "subCategory": "crm.associations.NO_ASSOCIATIONS_FOUND",
                "context": {"fromObjectId": [id], "toObjectType": [to.as_path()]},
                "message": format!("No {} is associated with {} {id}.", to.as_path(), from.singular()),
            }));
            continue;
        }
        let more = ids.len() > per_row;
        ids.truncate(per_row);
        let to_list: Vec<Value> = ids
            .iter()
            .map(|i| json!({"toObjectId": i, "associationTypes": association_types(from, to)}))
            .collect();
        let mut row = json!({"from": {"id": id}, "to": to_list});
        if let (true, Some(last)) = (more, ids.last()) {
            // Each row pages on its own; HubSpot leaves `paging` out when
            // the row is complete.
            row["paging"] =
                json!({"next": {"after": last.to_string(), "link": format!("?after={last}")}});
        }
        results.push(row);
    }
    let mut body = json!({
        "status": "COMPLETE",
        "results": results,
        "startedAt": iso(started),
        "completedAt": iso(Utc::now()),
    });
    if errs.is_empty() {
        return Json(body).into_response();
    }
    body["numErrors"] = json!(errs.len());
    body["errors"] = Value::Array(errs);
    (StatusCode::MULTI_STATUS, Json(body)).into_response()
}
