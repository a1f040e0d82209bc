//! The fetch step: gathers what the mappings need from HubSpot: the object
//! (only the properties mapped), a deal's line items and associated
//! contact, and the deal stage's label.

pub mod prefetch;
mod prefetch_deals;
pub mod prefetched;
pub mod shapes;
pub mod stages;
pub mod token_cache;
pub mod tokens;

use domain::{
    events::{HubSpotEvent, PortalId},
    failure::Failure,
    mapping::{self, Context, FieldMapping, Needs},
    object_type::ObjectType,
    portal::HubSpotAuthKind,
    triggers::Firing,
};
use secrecy::SecretString;
use shared::db::portals::StoredPortal;

use crate::Worker;
use prefetched::Prefetched;
use shapes::{
    DEAL_CURRENCY, ITEM_CURRENCY, line_item_properties, object_properties, order_line_items,
    primary_contact,
};
use tokens::{hubspot_token, token_rejected};

/// What to fetch for one object.
pub struct FetchRequest<'a> {
    /// The portal.
    pub portal: PortalId,
    /// Object type.
    pub object_type: ObjectType,
    /// The triggering event.
    pub event: &'a HubSpotEvent,
    /// What fired.
    pub firing: &'a Firing,
    /// The mappings of the object type.
    pub mappings: &'a [FieldMapping],
    /// The portal's Program ID.
    pub program_id: &'a str,
}

/// [`fetch`] with the portal's token, short blips retried in process. When
/// HubSpot refuses an OAuth token we held for valid, it is refreshed and
/// the object read again at once (a private-app token cannot be refreshed:
/// the failure stands).
pub async fn fetch_object(
    w: &Worker,
    stored: &StoredPortal,
    r: &FetchRequest<'_>,
    prefetched: &Prefetched,
) -> Result<Context, Failure> {
    w.retry
        .run("hubspot_fetch", || async move {
            let token = hubspot_token(w, r.portal, stored).await?;
            match fetch(w, r, &token, prefetched).await {
                Err(f)
                    if f.reason == "hubspot_auth" && stored.auth_kind == HubSpotAuthKind::Oauth =>
                {
                    token_rejected(w, r.portal, stored, &token).await?;
                    let token = hubspot_token(w, r.portal, stored).await?;
                    fetch(w, r, &token, prefetched).await
                }
                other => other,
            }
        })
        .await
}

/// Builds the mapping context of one event; the object comes from
/// `prefetched` (a batch read of the message's objects) when it is there.
pub async fn fetch(
    w: &Worker,
    r: &FetchRequest<'_>,
    token: &SecretString,
    prefetched: &Prefetched,
) -> Result<Context, Failure> {
    let needs = mapping::needs(r.mappings);
    let properties = object_properties(r.object_type, r.mappings, r.firing);
    let trigger = match r.firing {
        Firing::PropertyChange { property, value } => Some((property.clone(), value.clone())),
        Firing::Creation => None,
    };
    let id = r.event.object_id;
    let object = match prefetched.get(r.portal, r.object_type, id, &properties) {
        Some(props) => shared::hubspot::CrmObject {
            id: id.to_string(),
            properties: props.clone(),
        },
        None => w
            .hubspot
            .get_object(token, r.object_type, id, &properties)
            .await
            .map_err(|e| e.failure())?,
    };
    let mut props = object.properties;
    // The object's id is known even when HubSpot omits the property.
    if props.get("hs_object_id").is_none_or(Option::is_none) {
        props.insert("hs_object_id".into(), Some(id.to_string()));
    }
    let mut ctx = Context {
        properties: props,
        trigger,
        program_id: r.program_id.to_owned(),
        occurred_at_ms: r.event.occurred_at,
        ..Context::default()
    };
    if r.object_type == ObjectType::Deals {
        deal_context(w, r, token, &needs, prefetched, &mut ctx).await?;
    }
    Ok(ctx)
}

/// A deal's line items, currency, associated contact and stage label.
async fn deal_context(
    w: &Worker,
    r: &FetchRequest<'_>,
    token: &SecretString,
    needs: &Needs,
    prefetched: &Prefetched,
    ctx: &mut Context,
) -> Result<(), Failure> {
    let id = r.event.object_id;
    if !needs.line_item_properties.is_empty() {
        ctx.line_items = match prefetched.line_items(r.portal, id, &needs.line_item_properties) {
            Some(items) => items.to_vec(),
            None => line_items(w, token, id, &needs.line_item_properties).await?,
        };
    }
    let item_currency = ctx
        .line_items
        .iter()
        .find_map(|i| i.get(ITEM_CURRENCY).cloned().flatten());
    ctx.currency = ctx
        .property(DEAL_CURRENCY)
        .map(str::to_owned)
        .or(item_currency);
    if needs.associated_contact {
        ctx.associated_contact_id = match prefetched.contact(r.portal, id) {
            Some(contact) => contact,
            None => associated_contact(w, token, id).await?,
        };
    }
    if needs.stage_label
        && let Some(stage) = ctx.property("dealstage")
    {
        let pipeline = ctx.property("pipeline");
        ctx.stage_label = w
            .stages
            .label(&w.hubspot, token, r.portal, pipeline, stage)
            .await
            .map_err(|e| e.failure())?;
    }
    Ok(())
}

/// The deal's line items, ordered by their position on the deal, then id.
async fn line_items(
    w: &Worker,
    token: &SecretString,
    deal: u64,
    wanted: &std::collections::BTreeSet<String>,
) -> Result<Vec<mapping::Properties>, Failure> {
    let assoc = w
        .hubspot
        .associations(token, ObjectType::Deals, deal, "line_items")
        .await
        .map_err(|e| e.failure())?;
    if assoc.is_empty() {
        return Ok(vec![]);
    }
    let mut ids: Vec<u64> = assoc.iter().map(|a| a.to_object_id).collect();
    ids.sort_unstable();
    ids.dedup();
    let items = w
        .hubspot
        .batch_read(token, "line_items", &ids, &line_item_properties(wanted))
        .await
        .map_err(|e| e.failure())?;
    Ok(order_line_items(items))
}

/// The deal's primary contact, else its lowest-id contact.
async fn associated_contact(
    w: &Worker,
    token: &SecretString,
    deal: u64,
) -> Result<Option<u64>, Failure> {
    let assoc = w
        .hubspot
        .associations(token, ObjectType::Deals, deal, "contacts")
        .await
        .map_err(|e| e.failure())?;
    Ok(primary_contact(&assoc))
}
