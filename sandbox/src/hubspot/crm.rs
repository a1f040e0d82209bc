//! CRM objects API: single read, list, batch read.

// Handlers answer early with a ready `Response` as the error: its size is fine here.
#![allow(clippy::result_large_err)]

use std::collections::HashSet;

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use chrono::Utc;
use serde_json::{Map, Value, json};

use super::limits::Caller;
use super::model::{CrmObject, iso};
use super::view::{Query, associations_json, find, object_json, object_type};
use super::{FakeHubSpot, errors};
use crate::lock;

pub(crate) fn routes() -> Router<FakeHubSpot> {
    Router::new()
        .route("/crm/v3/objects/{object_type}", get(list))
        .route("/crm/v3/objects/{object_type}/batch/read", post(batch_read))
        .route("/crm/v3/objects/{object_type}/{id}", get(read_one))
}

async fn read_one(
    State(hub): State<FakeHubSpot>,
    Extension(caller): Extension<Caller>,
    Path((raw_type, id)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Response {
    let t = match object_type(&raw_type) {
        Ok(t) => t,
        Err(resp) => return resp,
    };
    let q = Query::parse(raw);
    let archived = q.one("archived") == Some("true");
    let portals = lock(&hub.state.portals);
    let Some(portal) = portals.get(&caller.portal) else {
        return errors::not_found(&id);
    };
    let Some(o) = find(portal, t, &id, q.one("idProperty")).filter(|o| o.archived == archived)
    else {
        return errors::not_found(&id);
    };
    let mut body = object_json(portal, o, q.list("properties").as_deref());
    if let Some(wanted) = q.list("associations") {
        let assoc = associations_json(portal, o, &wanted);
        if !assoc.is_empty() {
            body.insert("associations".into(), Value::Object(assoc));
        }
    }
    Json(Value::Object(body)).into_response()
}

async fn list(
    State(hub): State<FakeHubSpot>,
    Extension(caller): Extension<Caller>,
    Path(raw_type): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let t = match object_type(&raw_type) {
        Ok(t) => t,
        Err(resp) => return resp,
    };
    let q = Query::parse(raw);
    let limit = q
        .one("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(10)
        .clamp(1, 100);
    let after: u64 = q.one("after").and_then(|a| a.parse().ok()).unwrap_or(0);
    let archived = q.one("archived") == Some("true");
    let portals = lock(&hub.state.portals);
    let Some(portal) = portals.get(&caller.portal) else {
        return Json(json!({"results": []})).into_response();
    };
    let props = q.list("properties");
    let wanted = q.list("associations").unwrap_or_default();
    let mut page: Vec<&CrmObject> = portal
        .objects
        .get(&t)
        .into_iter()
        .flat_map(|m| m.range(after..))
        .map(|(_, o)| o)
        .filter(|o| o.archived == archived)
        .take(limit + 1)
        .collect();
    let next = (page.len() > limit)
        .then(|| page.pop().map(|o| o.id))
        .flatten();
    let results: Vec<Value> = page
        .iter()
        .map(|o| {
            let mut m = object_json(portal, o, props.as_deref());
            let assoc = associations_json(portal, o, &wanted);
            if !assoc.is_empty() {
                m.insert("associations".into(), Value::Object(assoc));
            }
            Value::Object(m)
        })
        .collect();
    let mut body = json!({"results": results});
    if let Some(after) = next {
        body["paging"] =
            json!({"next": {"after": after.to_string(), "link": format!("?after={after}")}});
    }
    Json(body).into_response()
}

fn string_list(v: &Value, key: &str) -> Vec<String> {
    v.get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

async fn batch_read(
    State(hub): State<FakeHubSpot>,
    Extension(caller): Extension<Caller>,
    Path(raw_type): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let t = match object_type(&raw_type) {
        Ok(t) => t,
        Err(resp) => return resp,
    };
    let started = Utc::now();
    let Ok(req) = serde_json::from_slice::<Value>(&body) else {
        return errors::validation("Invalid input JSON on line 1: the body is not a JSON object");
    };
    let Some(inputs) = req.get("inputs").and_then(Value::as_array) else {
        return errors::validation("Invalid input JSON: `inputs` is required");
    };
    let ids: Vec<String> = inputs
        .iter()
        .map(|i| match i.get("id") {
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => String::new(),
        })
        .collect();
    let with_history = string_list(&req, "propertiesWithHistory");
    let max = if with_history.is_empty() { 100 } else { 50 };
    if ids.len() > max {
        return errors::validation(format!(
            "Batch input size {} exceeds the maximum of {max} inputs per request",
            ids.len()
        ));
    }
    let mut seen = HashSet::new();
    let dups: Vec<&String> = ids.iter().filter(|id| !seen.insert(*id)).collect();
    if !dups.is_empty() {
        return errors::validation(format!(
            "Duplicate IDs found in batch input: {dups:?}. IDs must be unique"
        ));
    }
    let requested = string_list(&req, "properties");
    let requested = (!requested.is_empty()).then_some(requested);
    let id_property = req.get("idProperty").and_then(Value::as_str);
    let portals = lock(&hub.state.portals);
    let Some(portal) = portals.get(&caller.portal) else {
        return errors::not_found("portal");
    };
    let mut results = Vec::new();
    let mut missing = Vec::new();
    for id in &ids {
        match find(portal, t, id, id_property).filter(|o| !o.archived) {
            Some(o) => {
                let mut m = object_json(portal, o, requested.as_deref());
                if !with_history.is_empty() {
                    let history: Map<String, Value> = with_history
                        .iter()
                        .filter_map(|p| o.properties.get(p).map(|v| (p, v)))
                        .map(|(p, v)| {
                            (p.clone(), json!([{"value": v, "timestamp": iso(o.updated_at), "sourceType": "API"}]))
                        })
                        .collect();
                    m.insert("propertiesWithHistory".into(), Value::Object(history));
                }
                results.push(Value::Object(m));
            }
            None => missing.push(id.clone()),
        }
    }
    let mut body = json!({
        "status": "COMPLETE",
        "results": results,
        "startedAt": iso(started),
        "completedAt": iso(Utc::now()),
    });
    if missing.is_empty() {
        return Json(body).into_response();
    }
    let kind = t.singular().to_uppercase();
    body["numErrors"] = json!(1);
    body["errors"] = json!([{
        "status": "error",
        "category": "OBJECT_NOT_FOUND",
        "message": format!("Could not get some {kind} objects, they may be deleted or not exist. Check that ids are valid."),
        "context": {"ids": missing},
    }]);
    (StatusCode::MULTI_STATUS, Json(body)).into_response()
}
