//! What a re-evaluating replay would send, computed without recording or
//! sending anything (`--dry-run`).

use domain::{
    events::HubSpotEvent,
    failure::Failure,
    mapping,
    triggers::{self, Decision},
};
use serde_json::{Value, json};

use crate::{
    Worker,
    pipeline::fetch::{FetchRequest, fetch, prefetched::Prefetched, tokens::hubspot_token},
};

/// The parameters `event` maps to now (current configuration, fresh object),
/// or why it would not convert.
pub async fn preview(w: &Worker, event: &HubSpotEvent) -> Value {
    match evaluate(w, event).await {
        Ok(Ok(params)) => json!({ "would_send": params }),
        Ok(Err(reason)) => json!({ "nothing_to_send": reason }),
        Err(f) => json!({ "error": f.reason.as_str(), "detail": f.detail }),
    }
}

async fn evaluate(
    w: &Worker,
    event: &HubSpotEvent,
) -> Result<Result<Vec<(String, String)>, &'static str>, Failure> {
    let portal = w
        .portals
        .get(&w.pool, &w.cipher, event.portal_id)
        .await
        .map_err(Failure::database)?;
    let Some(portal) = portal else {
        return Ok(Err("unknown_portal"));
    };
    let Some(config) = portal.config.as_ref() else {
        return Ok(Err("portal_unconfigured"));
    };
    let (object_type, firing) = match triggers::evaluate(&config.triggers, event) {
        Decision::Fire(t, f) => (t, f),
        Decision::Ignore(reason) => return Ok(Err(reason.as_str())),
    };
    let rows = config
        .mappings
        .get(&object_type)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let token = hubspot_token(w, event.portal_id, &portal).await?;
    let request = FetchRequest {
        portal: event.portal_id,
        object_type,
        event,
        firing: &firing,
        mappings: rows,
        program_id: &config.impact_program_id,
    };
    let ctx = fetch(w, &request, &token, &Prefetched::none()).await?;
    let conversion =
        mapping::build(rows, &ctx).map_err(|e| Failure::permanent(e.reason(), e.to_string()))?;
    Ok(Ok(conversion.params))
}
