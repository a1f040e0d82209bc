//! HubSpot merges in the pipeline: a `*.merge` event records which ids
//! became which record ([`note`]); a conversion about to be recorded for a
//! merged record is the one an id of its group already has, when that id
//! converted for the same event type and the same firing ([`settle`]).
//!
//! The danger is real: after a merge HubSpot reports the survivor (often
//! under a new id) and its property changes, whose values (a lifecycle
//! stage, a deal stage) may have converted under a merged-away id; its
//! OrderId, built from the new id, would make a second conversion of the
//! same person or deal. The merged record itself says what was merged
//! into it (`hs_merged_object_ids`), and reading a merged-away id answers
//! the survivor, so the check costs a query only for records that were
//! merged, whatever order the events come in.

use domain::{
    events::HubSpotEvent,
    failure::Failure,
    mapping::{self, Context, Conversion, FieldMapping},
    merges::{self, MERGED_IDS_PROPERTY, Merge},
    object_type::ObjectType,
    triggers::{self, Firing},
};
use shared::db;

use crate::Worker;

/// The merge `event` reports, with the merged records' type, if it is one.
pub fn merge_of(event: &HubSpotEvent) -> Option<(Merge, ObjectType)> {
    Some((Merge::of(event)?, triggers::object_type_of(event)?))
}

/// Records `(merge, ty)`, what [`merge_of`] read in `event` (idempotent).
pub async fn note(
    w: &Worker,
    event: &HubSpotEvent,
    (merge, ty): (Merge, ObjectType),
) -> Result<(), Failure> {
    db::merges::record(
        &w.pool,
        event.portal_id.db_key(),
        ty,
        &merge,
        event.occurred_at,
    )
    .await
    .map_err(Failure::database)?;
    metrics::counter!("worker_merges_recorded_total", "object_type" => ty.as_str()).increment(1);
    tracing::info!(portal = %event.portal_id, object_type = ty.as_str(), survivor = merge.survivor,
        merged = ?merge.merged, "merge recorded");
    Ok(())
}

/// The conversion to record for `event`: `conversion`, or the one an id
/// merged into the same record already has (see
/// [`db::merges::converted_before`]); recording that one again links the
/// event to it and sends nothing new.
pub async fn settle(
    w: &Worker,
    event: &HubSpotEvent,
    (ty, firing): (ObjectType, &Firing),
    mappings: &[FieldMapping],
    fetched: Option<&Context>,
    conversion: Conversion,
) -> Result<Conversion, Failure> {
    let Some(ctx) = fetched else {
        return Ok(conversion);
    };
    let property = |name: &str| ctx.properties.get(name).and_then(|v| v.as_deref());
    // The record as HubSpot answered: a merged-away id reads as the survivor.
    let current = property("hs_object_id")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(event.object_id);
    let listed = merges::merged_ids(property(MERGED_IDS_PROPERTY));
    if listed.is_empty() && current == event.object_id {
        return Ok(conversion);
    }
    let portal = event.portal_id.db_key();
    let db_id = |id: u64| i64::try_from(id).unwrap_or(-1);
    let survivor = db::merges::resolve(&w.pool, portal, ty, db_id(current))
        .await
        .map_err(Failure::database)?;
    let mut ids = db::merges::merged_into(&w.pool, portal, ty, survivor)
        .await
        .map_err(Failure::database)?;
    ids.extend(
        listed
            .into_iter()
            .chain([event.object_id, current])
            .map(db_id),
    );
    ids.retain(|id| *id != survivor);
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() {
        return Ok(conversion);
    }
    let fired_by = merges::fired_by(firing);
    let keys = keys_for(mappings, ctx, &ids);
    let same = db::merges::SameConversion {
        ids: &ids,
        event_type: &conversion.event_type,
        fired_by: &fired_by,
        keys: &keys,
    };
    let earlier = db::merges::converted_before(&w.pool, portal, ty, &same)
        .await
        .map_err(Failure::database)?;
    let Some(earlier) = earlier else {
        return Ok(conversion);
    };
    metrics::counter!("worker_merged_conversions_total", "object_type" => ty.as_str()).increment(1);
    tracing::info!(portal = %event.portal_id, object = event.object_id, survivor,
        merged_id = earlier.object_id, conversion = earlier.id, %fired_by,
        "converted before under a merged id: not converted again");
    Ok(Conversion {
        params: earlier.params,
        event_type: earlier.event_type,
        order_id: earlier.order_id,
        notes: vec![format!(
            "{fired_by} converted before under {} (merged into {survivor}): conversion {}",
            earlier.object_id, earlier.id
        )],
    })
}

/// The key (event type, OrderId) the conversion has when built for each of
/// `ids` instead of the record's own id.
fn keys_for(mappings: &[FieldMapping], ctx: &Context, ids: &[i64]) -> Vec<(String, String)> {
    ids.iter()
        .filter_map(|id| {
            let mut as_id = ctx.clone();
            as_id
                .properties
                .insert("hs_object_id".into(), Some(id.to_string()));
            let built = mapping::build(mappings, &as_id).ok()?;
            Some((built.event_type, built.order_id))
        })
        .collect()
}
