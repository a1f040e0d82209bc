//! Checks of the document's `adjustments` section: every problem named by
//! its path, like the rest of the document.

use std::collections::BTreeSet;

use super::valid_property;
use crate::{
    adjustments::{IMPACT_DISPOSITION_CODES, ObjectAdjustments},
    mapping::{MappingSet, ORDER_AMOUNT_FIELDS, Target},
    object_type::ObjectType,
    triggers::ObjectTriggers,
};

/// impact.com codes are short upper-case words (`ORDER_UPDATE`).
fn valid_code(code: &str) -> bool {
    !code.is_empty()
        && code.len() <= 64
        && code
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// A warning for a disposition code impact.com does not provide to every
/// account (an account may configure its own).
fn unknown_disposition(path: &str, a: &ObjectAdjustments) -> Option<String> {
    let c = a.disposition_code.as_deref()?;
    (valid_code(c) && !IMPACT_DISPOSITION_CODES.contains(&c)).then(|| {
        format!(
            "{path}.disposition_code: {c:?} is not one of impact.com's own codes ({}): \
             reversals are refused unless your impact.com account has it configured \
             (Settings → Event Types → Disposition Codes; codes are case-sensitive)",
            IMPACT_DISPOSITION_CODES.join(", ")
        )
    })
}

/// Appends the errors and warnings of `adjustments`.
pub(super) fn check(
    adjustments: &std::collections::BTreeMap<ObjectType, ObjectAdjustments>,
    triggers: &std::collections::BTreeMap<ObjectType, ObjectTriggers>,
    mappings: &MappingSet,
    errors: &mut Vec<String>,
    warnings: &mut Vec<String>,
) {
    for (ty, a) in adjustments {
        let path = format!("adjustments.{ty}");
        let mut seen = BTreeSet::new();
        for (i, r) in a.reverse_when.iter().enumerate() {
            let p = format!("{path}.reverse_when[{i}]");
            if !valid_property(&r.property) {
                errors.push(format!(
                    "{p}: {:?} is not a HubSpot internal property name",
                    r.property
                ));
            }
            if !seen.insert(r.property.as_str()) {
                errors.push(format!("{p}: {:?} is listed twice", r.property));
            }
            match &r.only_values {
                None => errors.push(format!(
                    "{p}: list the values that reverse, e.g. {{\"property\": {:?}, \"values\": [\"closedlost\"]}}",
                    r.property
                )),
                Some(v) if v.is_empty() || v.iter().any(|x| x.trim().is_empty()) => {
                    errors.push(format!("{p}.values: must list at least one non-empty value"))
                }
                _ => {}
            }
        }
        let mut watched = BTreeSet::new();
        for (i, prop) in a.modify_on_change.iter().enumerate() {
            let p = format!("{path}.modify_on_change[{i}]");
            if !valid_property(prop) {
                errors.push(format!(
                    "{p}: {prop:?} is not a HubSpot internal property name"
                ));
            }
            if !watched.insert(prop.as_str()) {
                errors.push(format!("{p}: {prop:?} is listed twice"));
            }
            if seen.contains(prop.as_str()) {
                errors.push(format!(
                    "{p}: {prop:?} also reverses (reverse_when): a change either reverses or modifies"
                ));
            }
        }
        for (key, code) in [
            ("disposition_code", &a.disposition_code),
            ("modify_reason", &a.modify_reason),
        ] {
            if let Some(c) = code
                && !valid_code(c)
            {
                errors.push(format!(
                    "{path}.{key}: {c:?} is not an impact.com code (letters, digits, _ and -, e.g. \"ORDER_UPDATE\")"
                ));
            }
        }
        warnings.extend(unknown_disposition(&path, a));
        for (code, id) in &a.action_tracker_ids {
            if code.trim().is_empty() {
                errors.push(format!(
                    "{path}.action_tracker_ids: an EventTypeCode must not be empty"
                ));
            }
            if *id == 0 {
                errors.push(format!(
                    "{path}.action_tracker_ids.{code:?}: must be the event type's id (a positive integer)"
                ));
            }
        }
        let rows = mappings.get(ty).map(Vec::as_slice).unwrap_or_default();
        let mapped = |f: &str| rows.iter().any(|m| m.target == Target::Field(f.to_owned()));
        match &a.amount_from {
            Some(f) => match Target::parse(f) {
                Ok(Target::Field(name)) if ORDER_AMOUNT_FIELDS.contains(&name.as_str()) => {
                    if !mapped(&name) {
                        errors.push(format!(
                            "{path}.amount_from: {f} is not mapped in mappings.{ty}"
                        ));
                    }
                }
                _ => errors.push(format!(
                    "{path}.amount_from: {f:?} is not an order amount (Amount or OrderSubTotalPostDiscount)"
                )),
            },
            None if !a.modify_on_change.is_empty()
                && !ORDER_AMOUNT_FIELDS.iter().any(|f| mapped(f)) =>
            {
                errors.push(format!(
                    "{path}.modify_on_change: modifications send the new Amount, but nothing in \
                     mappings.{ty} maps an order amount (Amount or OrderSubTotal)"
                ));
            }
            None => {}
        }
        if a.is_inert() {
            continue;
        }
        let fires = triggers
            .get(ty)
            .is_some_and(|t| t.on_create || !t.on_change.is_empty());
        if !fires {
            warnings.push(format!(
                "{path}: no trigger is enabled for {ty}: no conversion will be sent, so none adjusted"
            ));
        }
        if mapped("EventTypeCode")
            && !mapped("ActionTrackerId")
            && !mapped("EventTypeId")
            && a.action_tracker_ids.is_empty()
        {
            warnings.push(format!(
                "{path}.action_tracker_ids: {ty} conversions are sent with an EventTypeCode, and \
                 impact.com identifies actions by ActionTrackerId: without the code's tracker id \
                 every adjustment will fail as adjustment_unidentified"
            ));
        }
    }
}
