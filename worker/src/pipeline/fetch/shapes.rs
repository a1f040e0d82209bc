//! What is read from HubSpot for the mappings, and in which order: shared
//! by the per-event reads and the message's batch reads.

use std::collections::BTreeSet;

use domain::{
    mapping::{self, FieldMapping},
    object_type::ObjectType,
    triggers::Firing,
};

/// Line-item property giving their order on the deal (then by id).
const POSITION: &str = "hs_position_on_quote";
/// A deal's currency.
pub const DEAL_CURRENCY: &str = "deal_currency_code";
/// A line item's currency.
pub const ITEM_CURRENCY: &str = "currency";

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

/// The line-item properties to read for `wanted` (plus position and currency).
pub fn line_item_properties(wanted: &BTreeSet<String>) -> Vec<String> {
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
