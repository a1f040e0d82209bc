//! The new `Amount` of a modification, mapped like the conversion's.

use domain::{
    events::HubSpotEvent, failure::Failure, mapping, object_type::ObjectType, portal::PortalConfig,
    triggers::Firing,
};
use shared::db;

use crate::{
    Worker,
    pipeline::fetch::{FetchRequest, fetch, prefetched::Prefetched, tokens::hubspot_token},
};

/// The new `Amount`: the object fetched (the event's value wins for the
/// changed property) and mapped by the very row that gave the conversion
/// its `field`.
#[allow(clippy::too_many_arguments)]
pub(super) async fn new_amount(
    w: &Worker,
    event: &HubSpotEvent,
    portal: &db::portals::StoredPortal,
    config: &PortalConfig,
    ty: ObjectType,
    field: &str,
    property: &str,
    value: &Option<String>,
) -> Result<Option<String>, Failure> {
    let rows: Vec<mapping::FieldMapping> = config
        .mappings
        .get(&ty)
        .map(|rows| {
            rows.iter()
                .filter(|m| m.target == mapping::Target::Field(field.to_owned()))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    let firing = Firing::PropertyChange {
        property: property.to_owned(),
        value: value.clone(),
    };
    let (rows_ref, firing_ref) = (&rows, &firing);
    let ctx = w
        .retry
        .run("hubspot_fetch", || async move {
            let token = hubspot_token(w, event.portal_id, portal).await?;
            let request = FetchRequest {
                portal: event.portal_id,
                object_type: ty,
                event,
                firing: firing_ref,
                mappings: rows_ref,
                program_id: &config.impact_program_id,
            };
            fetch(w, &request, &token, &Prefetched::none()).await
        })
        .await?;
    mapping::field_value(&rows, field, &ctx)
        .map_err(|e| Failure::permanent(e.reason(), e.to_string()))
}
