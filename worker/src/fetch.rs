//! Gathers what the mappings need from HubSpot: the object (only the
//! properties mapped), a deal's line items and associated contact, and the
//! deal stage's label.

use domain::{
    events::{HubSpotEvent, PortalId},
    failure::Failure,
    mapping::{self, Context, FieldMapping},
    object_type::ObjectType,
    triggers::Firing,
};
use secrecy::SecretString;

use crate::{Worker, prefetch::Prefetched};

/// Line-item property giving their order on the deal (then by id).
const POSITION: &str = "hs_position_on_quote";
/// A deal's currency.
const DEAL_CURRENCY: &str = "deal_currency_code";
/// A line item's currency.
const ITEM_CURRENCY: &str = "currency";

/// What to fetch for one object.
pub struct FetchRequest<'a> {
    /// The portal.
    pub portal: PortalId,
    /// Its HubSpot token.
    pub token: &'a SecretString,
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

/// Builds the mapping context of one event.
/// The object properties to read for `mappings` and what fired.
pub fn object_properties(
    object_type: ObjectType,
    mappings: &[FieldMapping],
    firing: &Firing,
) -> Vec<String> {
    let mut properties: Vec<String> = mapping::needs(mappings).properties.into_iter().collect();
    if let Firing::PropertyChange { property, .. } = firing
        && !properties.contains(property)
    {
        properties.push(property.clone());
    }
    if object_type == ObjectType::Deals && !properties.iter().any(|p| p == DEAL_CURRENCY) {
        properties.push(DEAL_CURRENCY.into());
    }
    properties
}

/// Builds the mapping context of one event; the object comes from
/// `prefetched` (a batch read of the message's objects) when it is there.
pub async fn fetch(
    w: &Worker,
    r: &FetchRequest<'_>,
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
            .get_object(r.token, r.object_type, id, &properties)
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
        if !needs.line_item_properties.is_empty() {
            ctx.line_items = match prefetched.line_items(r.portal, id, &needs.line_item_properties)
            {
                Some(items) => items.to_vec(),
                None => line_items(w, r.token, id, &needs.line_item_properties).await?,
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
                None => associated_contact(w, r.token, id).await?,
            };
        }
        if needs.stage_label
            && let Some(stage) = ctx.property("dealstage")
        {
            ctx.stage_label = w
                .stages
                .label(
                    &w.hubspot,
                    r.token,
                    r.portal,
                    ctx.property("pipeline"),
                    stage,
                )
                .await
                .map_err(|e| e.failure())?;
        }
    }
    Ok(ctx)
}

/// The line-item properties to read for `wanted` (plus position and currency).
pub fn line_item_properties(wanted: &std::collections::BTreeSet<String>) -> Vec<String> {
    let mut props: Vec<String> = wanted.iter().cloned().collect();
    props.push(POSITION.into());
    props.push(ITEM_CURRENCY.into());
    props
}

/// Line items in a stable order: their position on the deal, then id.
pub fn order_line_items(mut items: Vec<shared::hubspot::CrmObject>) -> Vec<mapping::Properties> {
    let key = |o: &shared::hubspot::CrmObject| {
        let pos = o
            .properties
            .get(POSITION)
            .and_then(|v| v.as_deref())
            .and_then(|v| v.parse::<i64>().ok())
            .unwrap_or(i64::MAX);
        (pos, o.id.parse::<u64>().unwrap_or(u64::MAX))
    };
    items.sort_by_key(key);
    items.into_iter().map(|o| o.properties).collect()
}

/// The primary contact among a deal's contacts, else the lowest id.
pub fn primary_contact(assoc: &[shared::hubspot::Association]) -> Option<u64> {
    let primary = assoc
        .iter()
        .filter(|a| a.labels.iter().any(|l| l.eq_ignore_ascii_case("primary")))
        .map(|a| a.to_object_id)
        .min();
    primary.or_else(|| assoc.iter().map(|a| a.to_object_id).min())
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
