//! The raw value a mapping row gives for an object (or one of its line items).

use super::{Context, FieldMapping, Source};

/// The raw value of a mapping (after its value map), `None` when empty.
pub(super) fn value_of(m: &FieldMapping, ctx: &Context, item: Option<usize>) -> Option<String> {
    let raw: String = match &m.source {
        Source::Property(p) => ctx.property(p)?.to_owned(),
        Source::LeadStatusId => format!(
            "{}_{}",
            ctx.property("hs_object_id")?,
            ctx.property("hs_lead_status")?
        ),
        Source::DealStageId => format!(
            "{}_{}",
            ctx.property("hs_object_id")?,
            ctx.property("dealstage")?
        ),
        Source::DealStageLabel => match &ctx.stage_label {
            Some(label) if !label.is_empty() => label.clone(),
            _ => ctx.property("dealstage")?.to_owned(),
        },
        Source::AssociatedContactId => ctx.associated_contact_id?.to_string(),
        Source::OccurredAt => ctx.occurred_at_ms.to_string(),
        Source::LineItem(p) => ctx
            .line_items
            .get(item?)?
            .get(p)?
            .as_deref()
            .filter(|v| !v.is_empty())?
            .to_owned(),
        // A constant applies to the order, and to every line item alike.
        Source::Const(c) => c.clone(),
    };
    let mapped = match &m.value_map {
        Some(map) => map.get(&raw).cloned().unwrap_or(raw),
        None => raw,
    };
    (!mapped.trim().is_empty()).then_some(mapped)
}
