//! The line-item rules of a conversion.

use std::collections::{BTreeMap, BTreeSet};

use super::{FieldError, ITEM_FIELDS, ORDER_TOTALS, err, indexed};

/// The item fields impact.com's item-level reference requires of every item.
const REQUIRED: [&str; 3] = ["ItemSku", "ItemCategory", "ItemQuantity"];

/// Item rules: indexes from 1 without gaps, `ItemSku{i}`, `ItemCategory{i}`
/// and `ItemQuantity{i}` for every item, never `ItemPrice{i}` with
/// `ItemSubTotal{i}`, no item amounts with order totals.
pub(crate) fn check(map: &BTreeMap<String, String>) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let mut indexes = BTreeSet::new();
    for k in map.keys() {
        if let Some((p, i)) = indexed(k).filter(|(p, _)| ITEM_FIELDS.contains(p)) {
            if i == 0 {
                errors.push(err(k, format!("{p} indexes start at 1")));
            } else {
                indexes.insert(i);
            }
        }
    }
    if let Some(gap) = (1..=indexes.len() as u32).find(|i| !indexes.contains(i)) {
        errors.push(err(
            format!("ItemSku{gap}"),
            format!("Item indexes must start at 1 and have no gaps: item {gap} is missing"),
        ));
    }
    let mut item_amounts = false;
    for i in &indexes {
        for field in REQUIRED {
            let name = format!("{field}{i}");
            if map.get(&name).is_none_or(|v| v.is_empty()) {
                errors.push(err(
                    &name,
                    format!("{name} is required when item-level details are sent"),
                ));
            }
        }
        let price = map
            .get(&format!("ItemPrice{i}"))
            .is_some_and(|v| !v.is_empty());
        let subtotal = map
            .get(&format!("ItemSubTotal{i}"))
            .is_some_and(|v| !v.is_empty());
        if price && subtotal {
            errors.push(err(
                format!("ItemSubTotal{i}"),
                format!("Send ItemPrice{i} or ItemSubTotal{i}, not both"),
            ));
        }
        item_amounts |= price || subtotal;
    }
    if item_amounts {
        for total in ORDER_TOTALS {
            if map.get(total).is_some_and(|v| !v.is_empty()) {
                errors.push(err(
                    total,
                    format!("{total} must not be sent together with item amounts"),
                ));
            }
        }
    }
    errors
}
