//! CRM objects API: single read, list, batch read, properties, pipelines.

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
use super::model::{CrmObject, ObjectType, Portal, association_type, iso};
use super::{FakeHubSpot, errors, schema};
use crate::sandbox::lock;

pub(crate) fn routes() -> Router<FakeHubSpot> {
    Router::new()
        .route("/crm/v3/objects/{object_type}", get(list))
        .route("/crm/v3/objects/{object_type}/batch/read", post(batch_read))
        .route("/crm/v3/objects/{object_type}/{id}", get(read_one))
        .route("/crm/v3/properties/{object_type}", get(properties))
        .route("/crm/v3/properties/{object_type}/{name}", get(property))
        .route("/crm/v3/pipelines/{object_type}", get(pipelines))
        .route("/crm/v3/pipelines/{object_type}/{pipeline}", get(pipeline))
        .route(
            "/crm/v3/pipelines/{object_type}/{pipeline}/stages",
            get(stages),
        )
}

/// Query parameters, repeated or comma-separated (`properties=a,b&properties=c`).
pub(crate) struct Query(Vec<(String, String)>);

impl Query {
    pub(crate) fn parse(raw: Option<String>) -> Query {
        Query(
            url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
                .into_owned()
                .collect(),
        )
    }

    pub(crate) fn list(&self, key: &str) -> Option<Vec<String>> {
        let values: Vec<String> = self
            .0
            .iter()
            .filter(|(k, _)| k == key)
            .flat_map(|(_, v)| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
            })
            .collect();
        (!values.is_empty()).then_some(values)
    }

    pub(crate) fn one(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

fn object_type(raw: &str) -> Result<ObjectType, Response> {
    ObjectType::parse(raw).ok_or_else(|| {
        errors::error(
            StatusCode::BAD_REQUEST,
            "OBJECT_TYPE_NOT_FOUND",
            format!("Unable to infer object type from: {raw}"),
            None,
        )
    })
}

/// The properties HubSpot returns when none are asked for.
fn default_properties(t: ObjectType) -> &'static [&'static str] {
    match t {
        ObjectType::Contacts => &[
            "createdate",
            "email",
            "firstname",
            "hs_object_id",
            "lastmodifieddate",
            "lastname",
        ],
        ObjectType::Companies => &[
            "createdate",
            "domain",
            "hs_lastmodifieddate",
            "hs_object_id",
            "name",
        ],
        ObjectType::Deals => &[
            "amount",
            "closedate",
            "createdate",
            "dealname",
            "dealstage",
            "hs_lastmodifieddate",
            "hs_object_id",
            "pipeline",
        ],
        ObjectType::LineItems => &[
            "createdate",
            "hs_lastmodifieddate",
            "hs_object_id",
            "name",
            "price",
            "quantity",
        ],
    }
}

/// `{id, properties, createdAt, updatedAt, archived}`: requested properties
/// that exist map to their value or null; unknown names are left out.
pub(crate) fn object_json(
    portal: &Portal,
    o: &CrmObject,
    requested: Option<&[String]>,
) -> Map<String, Value> {
    let t = o.object_type;
    let mut names: Vec<String> = match requested {
        Some(r) => r.to_vec(),
        None => default_properties(t)
            .iter()
            .map(|s| s.to_string())
            .collect(),
    };
    names.extend(["createdate", "hs_object_id", t.last_modified_property()].map(String::from));
    let defined = portal.properties.get(&t);
    let mut props = Map::new();
    for name in names {
        let known = o.properties.contains_key(&name)
            || defined.is_some_and(|d| d.iter().any(|p| p.name == name));
        if known {
            props.insert(
                name.clone(),
                o.properties.get(&name).map_or(Value::Null, |v| json!(v)),
            );
        }
    }
    let mut m = Map::new();
    m.insert("id".into(), json!(o.id.to_string()));
    m.insert("properties".into(), Value::Object(props));
    m.insert("createdAt".into(), json!(iso(o.created_at)));
    m.insert("updatedAt".into(), json!(iso(o.updated_at)));
    m.insert("archived".into(), json!(o.archived));
    if o.archived {
        m.insert("archivedAt".into(), json!(iso(o.updated_at)));
    }
    m
}

/// Finds a record by id, or by a unique property (`idProperty`).
fn find<'a>(
    portal: &'a Portal,
    t: ObjectType,
    id: &str,
    id_property: Option<&str>,
) -> Option<&'a CrmObject> {
    match id_property {
        Some(prop) if prop != "hs_object_id" => portal.objects.get(&t)?.values().find(|o| {
            o.properties
                .get(prop)
                .is_some_and(|v| v.eq_ignore_ascii_case(id))
        }),
        _ => portal.get(t, id.parse().ok()?),
    }
}

fn associations_json(portal: &Portal, o: &CrmObject, wanted: &[String]) -> Map<String, Value> {
    let mut m = Map::new();
    for to in wanted.iter().filter_map(|w| ObjectType::parse(w)) {
        let ids = portal.associated((o.object_type, o.id), to);
        if ids.is_empty() {
            continue;
        }
        let (_, label) = association_type(o.object_type, to);
        let results: Vec<Value> = ids
            .iter()
            .map(|id| json!({"id": id.to_string(), "type": label}))
            .collect();
        m.insert(to.as_path().into(), json!({"results": results}));
    }
    m
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
