//! `POST /crm/v3/objects/{type}/search`: filter groups (OR of ANDs), sorts,
//! paging by `after`, HubSpot's limits (200 per page, 10,000 results per
//! query: `total` counts every match, and asking for a page past the cap
//! answers 400, as HubSpot does; no rate-limit headers, see `limits`).

use std::cmp::Ordering;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Json, Router};
use chrono::{DateTime, NaiveDate};
use serde_json::{Value, json};

use super::limits::Caller;
use super::model::{CrmObject, ObjectType};
use super::view::object_json;
use super::{FakeHubSpot, errors};
use crate::lock;

const MAX_LIMIT: usize = 200;

pub(crate) fn routes() -> Router<FakeHubSpot> {
    Router::new().route("/crm/v3/objects/{object_type}/search", post(search))
}

/// A value as a number: plain numbers, ISO datetimes and dates (as epoch ms).
fn numeric(s: &str) -> Option<f64> {
    if let Ok(n) = s.trim().parse::<f64>() {
        return Some(n);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s.trim()) {
        return Some(t.timestamp_millis() as f64);
    }
    let d = NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").ok()?;
    Some(d.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis() as f64)
}

fn compare(a: &str, b: &str) -> Ordering {
    match (numeric(a), numeric(b)) {
        (Some(x), Some(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
        _ => a.to_lowercase().cmp(&b.to_lowercase()),
    }
}

fn as_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Whether one filter holds for a record; `Err` for an unknown operator.
fn matches(o: &CrmObject, f: &Value) -> Result<bool, String> {
    let name = f
        .get("propertyName")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let op = f.get("operator").and_then(Value::as_str).unwrap_or("EQ");
    let actual = o.properties.get(name).filter(|v| !v.is_empty());
    let value = f.get("value").map(as_text).unwrap_or_default();
    let values: Vec<String> = f
        .get("values")
        .and_then(Value::as_array)
        .map(|a| a.iter().map(as_text).collect())
        .unwrap_or_default();
    let cmp = |want: &[Ordering]| actual.is_some_and(|a| want.contains(&compare(a, &value)));
    Ok(match op {
        "EQ" => cmp(&[Ordering::Equal]),
        "NEQ" => !cmp(&[Ordering::Equal]),
        "LT" => cmp(&[Ordering::Less]),
        "LTE" => cmp(&[Ordering::Less, Ordering::Equal]),
        "GT" => cmp(&[Ordering::Greater]),
        "GTE" => cmp(&[Ordering::Greater, Ordering::Equal]),
        "BETWEEN" => {
            let high = f.get("highValue").map(as_text).unwrap_or_default();
            actual.is_some_and(|a| {
                compare(a, &value) != Ordering::Less && compare(a, &high) != Ordering::Greater
            })
        }
        "IN" => actual.is_some_and(|a| values.iter().any(|v| compare(a, v) == Ordering::Equal)),
        "NOT_IN" => {
            !actual.is_some_and(|a| values.iter().any(|v| compare(a, v) == Ordering::Equal))
        }
        "HAS_PROPERTY" => actual.is_some(),
        "NOT_HAS_PROPERTY" => actual.is_none(),
        "CONTAINS_TOKEN" => actual.is_some_and(|a| {
            a.to_lowercase()
                .contains(&value.trim_matches('*').to_lowercase())
        }),
        "NOT_CONTAINS_TOKEN" => !actual.is_some_and(|a| {
            a.to_lowercase()
                .contains(&value.trim_matches('*').to_lowercase())
        }),
        other => return Err(format!("Unknown operator {other}")),
    })
}

/// Sorts as `[{propertyName, direction}]` or `["-createdate"]`.
fn sort_keys(req: &Value) -> Vec<(String, bool)> {
    let Some(sorts) = req.get("sorts").and_then(Value::as_array) else {
        return Vec::new();
    };
    sorts
        .iter()
        .filter_map(|s| match s {
            Value::String(s) => Some(match s.strip_prefix('-') {
                Some(name) => (name.to_string(), false),
                None => (s.clone(), true),
            }),
            Value::Object(_) => {
                let name = s.get("propertyName")?.as_str()?.to_string();
                let asc = s.get("direction").and_then(Value::as_str) != Some("DESCENDING");
                Some((name, asc))
            }
            _ => None,
        })
        .collect()
}

async fn search(
    State(hub): State<FakeHubSpot>,
    Extension(caller): Extension<Caller>,
    Path(raw_type): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let Some(t) = ObjectType::parse(&raw_type) else {
        return errors::error(
            StatusCode::BAD_REQUEST,
            "OBJECT_TYPE_NOT_FOUND",
            format!("Unknown object type {raw_type}"),
            None,
        );
    };
    let req: Value = if body.is_empty() {
        json!({})
    } else {
        match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(e) => return errors::validation(format!("Invalid input JSON: {e}")),
        }
    };
    let limit = req.get("limit").and_then(Value::as_u64).unwrap_or(10) as usize;
    if limit > MAX_LIMIT {
        return errors::validation(format!("limit must be at most {MAX_LIMIT}, was {limit}"));
    }
    let after: usize = req
        .get("after")
        .map(as_text)
        .and_then(|a| a.parse().ok())
        .unwrap_or(0);
    let cap = hub.paging().search_results;
    if after >= cap {
        return errors::validation(format!("Cannot paginate beyond {cap} results"));
    }
    let groups: Vec<Vec<Value>> = req
        .get("filterGroups")
        .and_then(Value::as_array)
        .map(|g| {
            g.iter()
                .map(|g| {
                    g.get("filters")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default()
                })
                .collect()
        })
        .unwrap_or_default();
    if groups.len() > 5
        || groups.iter().any(|g| g.len() > 6)
        || groups.iter().map(Vec::len).sum::<usize>() > 18
    {
        return errors::validation(
            "Too many filters: at most 5 filterGroups, 6 filters each, 18 in total",
        );
    }
    let requested: Option<Vec<String>> = req.get("properties").and_then(Value::as_array).map(|a| {
        a.iter()
            .filter_map(|v| v.as_str().map(String::from))
            .collect()
    });
    let sorts = sort_keys(&req);

    let portals = lock(&hub.state.portals);
    let Some(portal) = portals.get(&caller.portal) else {
        return errors::not_found("portal");
    };
    let mut hits = Vec::new();
    for o in portal.live(t) {
        let mut any = groups.is_empty();
        for g in &groups {
            let mut all = true;
            for f in g {
                match matches(o, f) {
                    Ok(true) => {}
                    Ok(false) => all = false,
                    Err(msg) => return errors::validation(msg),
                }
            }
            any |= all;
        }
        if any {
            hits.push(o);
        }
    }
    hits.sort_by(|a, b| {
        for (name, asc) in &sorts {
            let ord = match (a.properties.get(name), b.properties.get(name)) {
                (Some(x), Some(y)) => compare(x, y),
                (x, y) => x.is_some().cmp(&y.is_some()),
            };
            let ord = if *asc { ord } else { ord.reverse() };
            if ord != Ordering::Equal {
                return ord;
            }
        }
        a.id.cmp(&b.id)
    });
    let total = hits.len();
    let results: Vec<Value> = hits
        .iter()
        .skip(after)
        .take(limit.min(cap - after))
        .map(|o| Value::Object(object_json(portal, o, requested.as_deref())))
        .collect();
    let mut body = json!({"total": total, "results": results});
    let next = after + results.len();
    // The cursor is handed out past the cap too: following it answers 400.
    if next < total && !results.is_empty() {
        body["paging"] =
            json!({"next": {"after": next.to_string(), "link": format!("?after={next}")}});
    }
    Json(body).into_response()
}
