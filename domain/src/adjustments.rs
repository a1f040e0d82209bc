//! Reversals and modifications of delivered conversions (impact.com's
//! Actions API): the per-object-type rules of a portal document, and the
//! pure decisions the worker wires I/O around.
//!
//! A reversal is `DELETE /Advertisers/{SID}/Actions` with a
//! `DispositionCode`; a modification is `PUT` with a `Reason` and the new
//! `Amount`. The action is identified by `ActionTrackerId` + `OrderId`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{
    events::HubSpotEvent,
    object_type::ObjectType,
    triggers::{PropertyTrigger, object_type_of},
};

/// `DispositionCode` sent when the document sets none: impact.com's
/// catch-all reason (a lost or deleted deal is neither a return nor an
/// order error).
pub const DEFAULT_DISPOSITION_CODE: &str = "OTHER";
/// The disposition codes impact.com provides to every account (its "reverse
/// an action" reference); an account may configure its own besides
/// (case-sensitive, per event type).
pub const IMPACT_DISPOSITION_CODES: [&str; 11] = [
    "REJECTED",
    "CONS_INFO_INVALID",
    "CONS_ERROR",
    "CONS_FRAUD",
    "ITEM_RETURNED",
    "ITEM_OUT_OF_STOCK",
    "ORDER_ERROR",
    "PUB_ACT_DISPUTE",
    "NOT_COMPLIANCE_TERMS",
    "MP_RETURNED",
    "OTHER",
];
/// `Reason` sent when the document sets none (impact.com's own example for
/// an amount change).
pub const DEFAULT_MODIFY_REASON: &str = "ORDER_UPDATE";

/// The rules of one portal, per object type.
pub type AdjustmentSet = BTreeMap<ObjectType, ObjectAdjustments>;

/// The rules of one object type (`adjustments.<type>` in the document).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectAdjustments {
    /// Reverse when one of these properties becomes one of its values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reverse_when: Vec<PropertyTrigger>,
    /// Reverse when the object is deleted in HubSpot.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reverse_on_delete: bool,
    /// `DispositionCode` of reversals (default [`DEFAULT_DISPOSITION_CODE`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disposition_code: Option<String>,
    /// Modify (send the new `Amount`) when one of these properties changes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub modify_on_change: Vec<String>,
    /// `Reason` of modifications (default [`DEFAULT_MODIFY_REASON`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modify_reason: Option<String>,
    /// The mapped impact.com field whose value is the new `Amount`
    /// (default: the order amount the conversion carried, `Amount` or
    /// `OrderSubTotalPostDiscount`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount_from: Option<String>,
    /// `ActionTrackerId` of each `EventTypeCode` sent (impact.com identifies
    /// an action by tracker id and OrderId, not by code).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub action_tracker_ids: BTreeMap<String, u64>,
}

impl ObjectAdjustments {
    /// True when no rule is set (nothing is ever adjusted).
    pub fn is_inert(&self) -> bool {
        self.reverse_when.is_empty() && !self.reverse_on_delete && self.modify_on_change.is_empty()
    }

    /// The `DispositionCode` to send.
    pub fn disposition(&self) -> &str {
        self.disposition_code
            .as_deref()
            .unwrap_or(DEFAULT_DISPOSITION_CODE)
    }

    /// The `Reason` to send.
    pub fn reason(&self) -> &str {
        self.modify_reason
            .as_deref()
            .unwrap_or(DEFAULT_MODIFY_REASON)
    }
}

/// What an event asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Adjustment {
    /// Reverse the object's delivered conversions.
    Reverse {
        /// Why, e.g. `dealstage=closedlost` or `deleted`.
        cause: String,
    },
    /// Send the new amount of the object's delivered conversions.
    Modify {
        /// The property that changed.
        property: String,
        /// Its new value as HubSpot sent it.
        value: Option<String>,
    },
}

impl Adjustment {
    /// `reversal` or `modification` (stored, metric label).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Reverse { .. } => "reversal",
            Self::Modify { .. } => "modification",
        }
    }
}

/// Decides whether `event` adjusts conversions of its object. Pure.
pub fn evaluate(set: &AdjustmentSet, event: &HubSpotEvent) -> Option<(ObjectType, Adjustment)> {
    let ty = object_type_of(event)?;
    let rules = set.get(&ty)?;
    let action = event.object_and_action().map_or("", |(_, a)| a);
    match action {
        "deletion" if rules.reverse_on_delete => Some((
            ty,
            Adjustment::Reverse {
                cause: "deleted".into(),
            },
        )),
        "propertyChange" => {
            let name = event.property_name.as_deref()?;
            let value = event.property_value.as_deref();
            let reverses = rules.reverse_when.iter().any(|r| {
                r.property == name
                    && match &r.only_values {
                        Some(values) => value.is_some_and(|v| values.iter().any(|x| x == v)),
                        None => false,
                    }
            });
            if reverses {
                let cause = format!("{name}={}", value.unwrap_or_default());
                return Some((ty, Adjustment::Reverse { cause }));
            }
            rules.modify_on_change.iter().any(|p| p == name).then(|| {
                (
                    ty,
                    Adjustment::Modify {
                        property: name.to_owned(),
                        value: event.property_value.clone(),
                    },
                )
            })
        }
        _ => None,
    }
}

/// Why an action cannot be identified (a permanent failure).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unidentified(pub String);

/// `ActionTrackerId` and `OrderId` of the action a conversion created:
/// the conversion's own `ActionTrackerId`/`EventTypeId`, or the tracker id
/// configured for its `EventTypeCode`.
pub fn action_identity(
    ty: ObjectType,
    conversion: &[(String, String)],
    rules: &ObjectAdjustments,
) -> Result<Vec<(String, String)>, Unidentified> {
    let get = |k: &str| {
        conversion
            .iter()
            .find(|(n, v)| n == k && !v.is_empty())
            .map(|(_, v)| v.as_str())
    };
    let order = get("OrderId")
        .ok_or_else(|| Unidentified("the conversion was sent without an OrderId".into()))?;
    let tracker = match get("ActionTrackerId").or_else(|| get("EventTypeId")) {
        Some(id) => id.to_owned(),
        None => {
            let code = get("EventTypeCode").unwrap_or_default();
            let id = rules.action_tracker_ids.get(code).ok_or_else(|| {
                Unidentified(format!(
                    "the conversion was sent with EventTypeCode {code:?}: impact.com identifies \
                     actions by ActionTrackerId, so set adjustments.{ty}.action_tracker_ids.{code:?} \
                     to that event type's id"
                ))
            })?;
            id.to_string()
        }
    };
    Ok(vec![
        ("ActionTrackerId".into(), tracker),
        ("OrderId".into(), order.to_owned()),
    ])
}

/// The order-amount field the new `Amount` is mapped like: the configured
/// one, or the first order amount the conversion carried.
pub fn amount_field(conversion: &[(String, String)], rules: &ObjectAdjustments) -> Option<String> {
    if let Some(f) = &rules.amount_from {
        return crate::mapping::Target::parse(f).ok().map(|t| t.display());
    }
    crate::mapping::ORDER_AMOUNT_FIELDS
        .iter()
        .find(|f| conversion.iter().any(|(n, _)| n == *f))
        .map(|f| (*f).to_owned())
}

/// Whether two amounts are the same number (`100` and `100.00`).
pub fn same_amount(a: &str, b: &str) -> bool {
    match (a.trim().parse::<f64>(), b.trim().parse::<f64>()) {
        (Ok(x), Ok(y)) => (x - y).abs() < 0.005,
        _ => a.trim() == b.trim(),
    }
}

#[cfg(test)]
#[path = "adjustments_tests.rs"]
mod tests;
