//! Preview: the conversion an object would produce now, with the portal's
//! mappings, or what is missing. Reads HubSpot like the worker does (object,
//! a deal's line items, associated contact and stage label) and maps with
//! the same pure `domain::mapping::build`.

use domain::{
    events::PortalId,
    mapping::{self, Context},
    object_type::ObjectType,
};
use serde::Serialize;

use super::{Website, ops::OpError};

/// The outcome of a preview.
#[derive(Debug, Serialize)]
pub struct Preview {
    /// Object type.
    pub object_type: ObjectType,
    /// Object id.
    pub object_id: u64,
    /// The parameters that would be sent, in order (when complete).
    pub params: Option<Vec<(String, String)>>,
    /// Why no conversion could be built (missing fields, bad values).
    pub problem: Option<String>,
    /// Notes of the mapping (e.g. amounts left out).
    pub notes: Vec<String>,
}

/// Builds the preview of one object.
pub async fn preview(
    site: &Website,
    portal: PortalId,
    object_type: ObjectType,
    object_id: u64,
) -> Result<Preview, OpError> {
    let view = super::ops::view(site, portal).await?;
    let program_id = view
        .program_id
        .clone()
        .ok_or_else(|| OpError::Conflict("save the impact.com Settings first".into()))?;
    let stored = shared::db::portals::load(&site.pool, None, portal)
        .await
        .map_err(OpError::from)?
        .and_then(|s| s.config)
        .ok_or(OpError::NotFound)?;
    let rows = stored
        .mappings
        .get(&object_type)
        .cloned()
        .unwrap_or_default();
    let token = super::ops::hubspot_token(site, portal).await?;
    let hs = &site.hubspot;
    let up = |e: shared::hubspot::HubSpotError| OpError::Upstream(format!("HubSpot: {e}"));
    let needs = mapping::needs(&rows);
    let mut props: Vec<String> = needs.properties.iter().cloned().collect();
    if object_type == ObjectType::Deals {
        props.extend([
            "deal_currency_code".into(),
            "pipeline".into(),
            "dealstage".into(),
        ]);
    }
    let object = hs
        .get_object(&token, object_type, object_id, &props)
        .await
        .map_err(|e| match e {
            shared::hubspot::HubSpotError::NotFound => OpError::Invalid(vec![format!(
                "HubSpot has no {object_type} with id {object_id}"
            )]),
            other => up(other),
        })?;
    let mut properties = object.properties;
    properties
        .entry("hs_object_id".into())
        .or_insert_with(|| Some(object_id.to_string()));
    let mut ctx = Context {
        properties,
        program_id,
        occurred_at_ms: u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0),
        ..Context::default()
    };
    if object_type == ObjectType::Deals {
        if !needs.line_item_properties.is_empty() {
            let assoc = hs
                .associations(&token, ObjectType::Deals, object_id, "line_items")
                .await
                .map_err(up)?;
            let mut ids: Vec<u64> = assoc.iter().map(|a| a.to_object_id).collect();
            ids.sort_unstable();
            ids.dedup();
            let mut wanted: Vec<String> = needs.line_item_properties.iter().cloned().collect();
            wanted.extend(["hs_position_on_quote".into(), "currency".into()]);
            let mut items = hs
                .batch_read(&token, "line_items", &ids, &wanted)
                .await
                .map_err(up)?;
            items.sort_by_key(|o| {
                let pos = o
                    .properties
                    .get("hs_position_on_quote")
                    .and_then(|v| v.as_deref())
                    .and_then(|v| v.parse::<i64>().ok())
                    .unwrap_or(i64::MAX);
                (pos, o.id.parse::<u64>().unwrap_or(u64::MAX))
            });
            ctx.line_items = items.into_iter().map(|o| o.properties).collect();
        }
        let item_currency = ctx
            .line_items
            .iter()
            .find_map(|i| i.get("currency").cloned().flatten());
        ctx.currency = ctx
            .property("deal_currency_code")
            .map(str::to_owned)
            .or(item_currency);
        if needs.associated_contact {
            let assoc = hs
                .associations(&token, ObjectType::Deals, object_id, "contacts")
                .await
                .map_err(up)?;
            let primary = assoc
                .iter()
                .filter(|a| a.labels.iter().any(|l| l.eq_ignore_ascii_case("primary")))
                .map(|a| a.to_object_id)
                .min();
            ctx.associated_contact_id =
                primary.or_else(|| assoc.iter().map(|a| a.to_object_id).min());
        }
        if needs.stage_label
            && let Some(stage) = ctx.property("dealstage").map(str::to_owned)
        {
            let pipelines = hs.deal_pipelines(&token).await.map_err(up)?;
            let pipeline = ctx.property("pipeline").map(str::to_owned);
            ctx.stage_label = pipelines
                .iter()
                .filter(|p| pipeline.as_deref().is_none_or(|id| id == p.id))
                .flat_map(|p| p.stages.iter())
                .find(|s| s.id == stage)
                .map(|s| s.label.clone());
        }
    }
    Ok(match mapping::build(&rows, &ctx) {
        Ok(c) => Preview {
            object_type,
            object_id,
            params: Some(c.params),
            problem: None,
            notes: c.notes,
        },
        Err(e) => Preview {
            object_type,
            object_id,
            params: None,
            problem: Some(e.to_string()),
            notes: vec![],
        },
    })
}
