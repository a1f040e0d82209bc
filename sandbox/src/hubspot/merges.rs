//! Merges and restores, as HubSpot does them.
//!
//! A merge makes a new record of two (HubSpot's current behaviour for
//! contacts and companies, as for other objects): the primary record's
//! values win, the merged record's fill the gaps, associations of both are
//! kept, `hs_merged_object_ids` lists every id merged into it, and both old
//! records are archived; reading an old id answers the new record. One
//! `{type}.merge` event reports it (`primaryObjectId`, `mergedObjectIds`,
//! `newObjectId`, `numberOfPropertiesMoved`; `objectId` is the new record).
//! A restore brings a deleted record back under its id and emits
//! `{type}.restore` (no other fields).

// Handlers answer early with a ready `Response` as the error: its size is fine here.
#![allow(clippy::result_large_err)]

use std::collections::BTreeSet;

use anyhow::{anyhow, ensure};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use chrono::Utc;
use serde::Deserialize;
use serde_json::{Value, json};

use super::model::{ObjectType, Portal, iso};
use super::{FakeHubSpot, Source};

/// The property listing the ids merged into a record.
const MERGED_IDS: &str = "hs_merged_object_ids";
/// Properties a merge sets itself rather than moves.
const OWN: [&str; 3] = ["hs_object_id", "createdate", MERGED_IDS];

pub(crate) fn routes() -> Router<FakeHubSpot> {
    Router::new()
        .route(
            "/_sandbox/portals/{portal}/objects/{object_type}/merge",
            post(merge_route),
        )
        .route(
            "/_sandbox/portals/{portal}/objects/{object_type}/{id}/restore",
            post(restore_route),
        )
}

/// Merges `merged` into `primary` in the portal's data; returns the new
/// record's id and the number of values moved from `merged`.
fn merge_in(
    p: &mut Portal,
    t: ObjectType,
    primary: u64,
    merged: u64,
) -> anyhow::Result<(u64, u64)> {
    ensure!(primary != merged, "cannot merge {t} {primary} with itself");
    let live = |id: u64| {
        p.get(t, id)
            .filter(|o| !o.archived)
            .cloned()
            .ok_or_else(|| anyhow!("no live {t} {id} in portal {}", p.id))
    };
    let (a, b) = (live(primary)?, live(merged)?);
    let mut ids: BTreeSet<u64> = [primary, merged].into();
    for o in [&a, &b] {
        let listed = o
            .properties
            .get(MERGED_IDS)
            .map(String::as_str)
            .unwrap_or("");
        ids.extend(
            listed
                .split(';')
                .filter_map(|s| s.trim().parse::<u64>().ok()),
        );
    }
    let mut props = b.properties.clone();
    let moved = b
        .properties
        .keys()
        .filter(|k| !OWN.contains(&k.as_str()) && !a.properties.contains_key(*k))
        .count() as u64;
    props.extend(a.properties.clone());
    for own in OWN {
        props.remove(own);
    }
    let id = p.insert(t, props, Utc::now());
    let joined: Vec<String> = ids.iter().map(u64::to_string).collect();
    let created = a.created_at.min(b.created_at);
    if let Some(o) = p.get_mut(t, id) {
        o.properties.insert(MERGED_IDS.into(), joined.join(";"));
        o.properties.insert("createdate".into(), iso(created));
        o.created_at = created;
    }
    p.ensure_property(t, MERGED_IDS);
    for old in [primary, merged] {
        let linked: Vec<(ObjectType, u64)> = p
            .associations
            .get(&(t, old))
            .into_iter()
            .flat_map(|m| m.iter().flat_map(|(to, set)| set.iter().map(|i| (*to, *i))))
            .collect();
        for other in linked {
            p.associate((t, id), other);
        }
        if let Some(o) = p.get_mut(t, old) {
            o.archived = true;
        }
        p.merged_into.insert((t, old), id);
    }
    for survivor in p.merged_into.values_mut() {
        if *survivor == primary || *survivor == merged {
            *survivor = id;
        }
    }
    Ok((id, moved))
}

impl FakeHubSpot {
    /// Merges record `merged` into `primary` (contacts, companies, deals)
    /// and emits `{type}.merge`; returns the new record's id.
    pub fn merge_objects(
        &self,
        portal: u64,
        t: ObjectType,
        primary: u64,
        merged: u64,
    ) -> anyhow::Result<u64> {
        ensure!(t != ObjectType::LineItems, "line items are not merged");
        let (id, moved) = self.with_portal(portal, |p| merge_in(p, t, primary, merged))??;
        let now = Utc::now();
        let mut event = self.event(portal, (t, id), "merge", now, &Source::crm(), None);
        event.primary_object_id = Some(primary);
        event.merged_object_ids = vec![merged];
        event.new_object_id = Some(id);
        event.number_of_properties_moved = Some(moved);
        self.emit(vec![event]);
        Ok(id)
    }

    /// Brings a deleted record back under its id and emits `{type}.restore`.
    pub fn restore_object(&self, portal: u64, t: ObjectType, id: u64) -> anyhow::Result<()> {
        let now = Utc::now();
        self.with_portal(portal, |p| {
            ensure!(
                !p.merged_into.contains_key(&(t, id)),
                "{t} {id} was merged away: it cannot be restored"
            );
            match p.get_mut(t, id) {
                Some(o) if o.archived => {
                    o.archived = false;
                    o.updated_at = now;
                    o.properties
                        .insert(t.last_modified_property().into(), iso(now));
                    Ok(())
                }
                _ => Err(anyhow!("no deleted {t} {id} in portal {portal}")),
            }
        })??;
        if t != ObjectType::LineItems {
            let event = self.event(portal, (t, id), "restore", now, &Source::crm(), None);
            self.emit(vec![event]);
        }
        Ok(())
    }
}

/// HubSpot's merge API body.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MergeBody {
    primary_object_id: Value,
    object_id_to_merge: Value,
}

fn id_of(v: &Value) -> Option<u64> {
    match v {
        Value::String(s) => s.trim().parse().ok(),
        other => other.as_u64(),
    }
}

fn fail(status: StatusCode, e: impl std::fmt::Display) -> Response {
    (status, Json(json!({"error": e.to_string()}))).into_response()
}

/// `POST /_sandbox/portals/{portal}/objects/{type}/merge`
/// `{"primaryObjectId", "objectIdToMerge"}` → `{"id"}` (the new record).
async fn merge_route(
    State(hub): State<FakeHubSpot>,
    Path((portal, raw_type)): Path<(u64, String)>,
    Json(body): Json<MergeBody>,
) -> Response {
    let Some(t) = ObjectType::parse(&raw_type) else {
        return fail(
            StatusCode::NOT_FOUND,
            format!("unknown object type {raw_type}"),
        );
    };
    let (Some(primary), Some(merged)) = (
        id_of(&body.primary_object_id),
        id_of(&body.object_id_to_merge),
    ) else {
        return fail(StatusCode::BAD_REQUEST, "ids are numbers");
    };
    match hub.merge_objects(portal, t, primary, merged) {
        Ok(id) => Json(json!({"id": id.to_string()})).into_response(),
        Err(e) => fail(StatusCode::BAD_REQUEST, e),
    }
}

/// `POST /_sandbox/portals/{portal}/objects/{type}/{id}/restore`.
async fn restore_route(
    State(hub): State<FakeHubSpot>,
    Path((portal, raw_type, id)): Path<(u64, String, u64)>,
) -> Response {
    let Some(t) = ObjectType::parse(&raw_type) else {
        return fail(
            StatusCode::NOT_FOUND,
            format!("unknown object type {raw_type}"),
        );
    };
    match hub.restore_object(portal, t, id) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => fail(StatusCode::BAD_REQUEST, e),
    }
}
