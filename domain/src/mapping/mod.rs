//! Field mappings: from a HubSpot object (and its event) to the parameters
//! of an impact.com conversion. Pure: [`build`] is a function of the
//! mappings and a [`Context`] gathered by the worker.
//!
//! Language (docs/src/reference/portal-document.md): plain properties, the seed's
//! computed fields, `line_item{i}.<prop>` → `Item<Field>{i}`, constants and a
//! per-row value map. `CampaignId` comes from the Program ID unless mapped.

mod build;
mod fields;
mod items;
mod normalize;
mod source;
mod validate;
mod value;

use std::collections::{BTreeMap, BTreeSet};

pub use build::{build, field_value};
pub use fields::{
    ATTRIBUTION_FIELDS, EVENT_TYPE_FIELDS, FieldKind, ITEM_AMOUNT_FIELDS, ORDER_AMOUNT_FIELDS,
    Target, target_names,
};
pub use items::{QUANTITY_PROPERTY, REQUIRED_ITEM_FIELDS, default_quantity, suggested_mapping};
pub use normalize::normalize;
pub use source::Source;

use crate::object_type::ObjectType;

/// One mapping row: a source → an impact.com field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldMapping {
    /// Where the value comes from.
    pub source: Source,
    /// Which impact.com field receives it.
    pub target: Target,
    /// Optional translation of raw values (`salesqualifiedlead` → `SQL`);
    /// values not listed pass through unchanged.
    pub value_map: Option<BTreeMap<String, String>>,
}

/// The mappings of one portal, per object type, in document order.
pub type MappingSet = BTreeMap<ObjectType, Vec<FieldMapping>>;

/// A HubSpot record's properties (`None`: the property is empty).
pub type Properties = BTreeMap<String, Option<String>>;

/// What must be fetched from HubSpot to map an object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Needs {
    /// Properties of the object itself.
    pub properties: BTreeSet<String>,
    /// Properties of each line item (empty: line items are not needed).
    pub line_item_properties: BTreeSet<String>,
    /// The associated contact's id.
    pub associated_contact: bool,
    /// The deal stage's label (pipelines API).
    pub stage_label: bool,
    /// Amounts are mapped without a `CurrencyCode`: the object's currency
    /// (else the portal's company currency) is sent with them.
    pub currency: bool,
}

/// Lists what `mappings` read. The triggering property is always included
/// by the caller (its value comes from the event anyway).
pub fn needs(mappings: &[FieldMapping]) -> Needs {
    let mut n = Needs::default();
    n.properties.insert("hs_object_id".into());
    for m in mappings {
        n.properties
            .extend(m.source.properties().into_iter().map(str::to_owned));
        match &m.source {
            Source::LineItem(p) => {
                n.line_item_properties.insert(p.clone());
            }
            Source::AssociatedContactId => n.associated_contact = true,
            Source::DealStageLabel => n.stage_label = true,
            _ => {}
        }
    }
    if items::default_quantity(mappings) {
        n.line_item_properties.insert(QUANTITY_PROPERTY.into());
    }
    n.currency = mappings.iter().any(|m| m.target.kind() == FieldKind::Money)
        && !mappings
            .iter()
            .any(|m| m.target == Target::Field("CurrencyCode".into()));
    n
}

/// Everything [`build`] reads: the object as fetched, the event's facts and
/// the portal's settings.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// The object's properties as fetched.
    pub properties: Properties,
    /// The triggering property and its value from the event; it overrides
    /// the fetched value (the event's moment is what is judged).
    pub trigger: Option<(String, Option<String>)>,
    /// The deal's line items in a stable order (item 1 first).
    pub line_items: Vec<Properties>,
    /// The deal's associated contact.
    pub associated_contact_id: Option<u64>,
    /// The label of the deal's stage, when known.
    pub stage_label: Option<String>,
    /// The portal's impact.com Program ID (`CampaignId`).
    pub program_id: String,
    /// The event's `occurredAt` (epoch milliseconds).
    pub occurred_at_ms: u64,
    /// The object's own currency (a deal's `deal_currency_code`, else its
    /// line items' `hs_line_item_currency_code`): sent as `CurrencyCode` with
    /// amounts unless `CurrencyCode` is mapped.
    pub currency: Option<String>,
    /// The portal's company currency (HubSpot's account information), used
    /// when the object has no currency of its own.
    pub company_currency: Option<String>,
}

impl Context {
    /// A property's value as judged at the event's moment.
    pub fn property(&self, name: &str) -> Option<&str> {
        if let Some((p, v)) = &self.trigger
            && p == name
        {
            return v.as_deref().filter(|v| !v.is_empty());
        }
        self.properties
            .get(name)
            .and_then(|v| v.as_deref())
            .filter(|v| !v.is_empty())
    }
}

/// A mapped, normalised and validated conversion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversion {
    /// Parameters in the order they are sent.
    pub params: Vec<(String, String)>,
    /// The event type value (`EventTypeCode`, `ActionTrackerId` or `EventTypeId`).
    pub event_type: String,
    /// The `OrderId`.
    pub order_id: String,
    /// Decisions worth recording (e.g. an order amount left out because
    /// line items carry the amounts).
    pub notes: Vec<String>,
}

impl Conversion {
    /// A parameter's value.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Why an object cannot become a conversion; always permanent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    /// A field impact.com requires is missing.
    #[error("required impact.com field {field} is missing: {detail}")]
    Missing {
        /// The field (or group, e.g. `EventTypeCode|ActionTrackerId|EventTypeId`).
        field: String,
        /// Which mapping or source came up empty.
        detail: String,
    },
    /// A value cannot be normalised or exceeds a limit.
    #[error("impact.com field {field}: {problem}")]
    Invalid {
        /// The field.
        field: String,
        /// What is wrong with the value.
        problem: String,
    },
}

impl MappingError {
    /// Stable reason code.
    pub fn reason(&self) -> crate::failure::FailureReason {
        match self {
            Self::Missing { .. } => crate::failure::FailureReason::MappingIncomplete,
            Self::Invalid { .. } => crate::failure::FailureReason::MappingInvalid,
        }
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod tests_items;
