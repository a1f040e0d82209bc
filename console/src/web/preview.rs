//! Preview: the conversion an object would produce now, with the portal's
//! mappings, or what is missing. Reads HubSpot with the same assembly as the
//! worker (`shared::hubspot::assemble`: object, a deal's line items,
//! associated contact, stage label and the portal's company currency) and
//! maps with the same pure `domain::mapping::build`.

use domain::{events::PortalId, mapping, object_type::ObjectType};
use serde::Serialize;
use shared::hubspot::{
    HubSpotError,
    assemble::{Known, ObjectRequest, UncachedCurrency, UncachedStages, assemble},
};

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
    let request = ObjectRequest {
        token: &token,
        object_type,
        object_id,
        mappings: &rows,
        needs: domain::mapping::needs(&rows),
        trigger: None,
        program_id: &program_id,
        occurred_at_ms: u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0),
    };
    let ctx = assemble(
        &site.hubspot,
        &request,
        Known::default(),
        &UncachedStages,
        &UncachedCurrency,
    )
    .await
    .map_err(|e| match e {
        HubSpotError::NotFound => OpError::Invalid(vec![format!(
            "HubSpot has no {object_type} with id {object_id}"
        )]),
        other => OpError::hubspot(&other),
    })?;
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
