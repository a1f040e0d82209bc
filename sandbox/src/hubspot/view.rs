//! How records look in CRM API answers, and the query-string reader.

// Handlers answer early with a ready `Response` as the error: its size is fine here.
#![allow(clippy::result_large_err)]

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::errors;
use super::model::{CrmObject, ObjectType, Portal, association_type, iso};

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

pub(crate) fn object_type(raw: &str) -> Result<ObjectType, Response> {
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

/// Finds a record by id (a merged-away id finds the merged record, as with
/// HubSpot), or by a unique property (`idProperty`).
pub(crate) fn find<'a>(
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
        _ => portal.get(t, portal.resolve(t, id.parse().ok()?)),
    }
}

pub(crate) fn associations_json(
    portal: &Portal,
    o: &CrmObject,
    wanted: &[String],
) -> Map<String, Value> {
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
