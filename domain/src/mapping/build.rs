//! From mappings and a context to the ordered parameters of a conversion.

use super::{
    Context, Conversion, FieldMapping, MappingError, Source, Target, fields, normalize,
    validate::validate, value::value_of,
};

/// Maps, normalises and validates one object. Order of the parameters:
/// `CampaignId`, then order-level fields in mapping order, then line items
/// (item 1's fields in mapping order, then item 2's, ...).
pub fn build(mappings: &[FieldMapping], ctx: &Context) -> Result<Conversion, MappingError> {
    let mut params: Vec<(String, String)> = Vec::new();
    let mut notes = Vec::new();
    let campaign_mapped = mappings
        .iter()
        .any(|m| m.target == Target::Field("CampaignId".into()));
    if !campaign_mapped && !ctx.program_id.trim().is_empty() {
        params.push(("CampaignId".into(), ctx.program_id.trim().to_owned()));
    }
    let mut empty_sources: Vec<(String, String)> = Vec::new();
    for m in mappings {
        let Target::Field(name) = &m.target else {
            continue;
        };
        match value_of(m, ctx, None) {
            Some(raw) => {
                let v =
                    normalize(m.target.kind(), &raw).map_err(|problem| MappingError::Invalid {
                        field: name.clone(),
                        problem,
                    })?;
                params.push((name.clone(), v));
            }
            None => empty_sources.push((name.clone(), describe(&m.source))),
        }
    }

    super::items::expand(mappings, ctx, &mut params)?;
    resolve_amount_conflict(&mut params, &mut notes);
    add_currency(&mut params, &mut notes, mappings, ctx)?;
    validate(params, notes, &empty_sources)
}

/// impact.com refuses order-level amounts together with item amounts: when
/// line items carry amounts, they win and the order-level amount is left out.
fn resolve_amount_conflict(params: &mut Vec<(String, String)>, notes: &mut Vec<String>) {
    let items_have_amounts = params.iter().any(|(n, _)| {
        fields::ITEM_AMOUNT_FIELDS
            .iter()
            .any(|f| n.strip_prefix(f).is_some_and(is_index))
    });
    if !items_have_amounts {
        return;
    }
    params.retain(|(n, _)| {
        let order_level = fields::ORDER_AMOUNT_FIELDS.contains(&n.as_str());
        if order_level {
            notes.push(format!(
                "{n} left out: line items carry the amounts (impact.com refuses both)"
            ));
        }
        !order_level
    });
}

/// impact.com needs `CurrencyCode` whenever amounts are sent: when none is
/// mapped, the object's own currency is used, else the portal's company
/// currency, else the conversion cannot be sent.
fn add_currency(
    params: &mut Vec<(String, String)>,
    notes: &mut Vec<String>,
    mappings: &[FieldMapping],
    ctx: &Context,
) -> Result<(), MappingError> {
    let money = params.iter().any(|(n, _)| is_money(mappings, n));
    if !money || params.iter().any(|(n, _)| n == "CurrencyCode") {
        return Ok(());
    }
    let usable = |c: &Option<String>| {
        c.as_deref()
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_ascii_uppercase)
    };
    let (code, whence) = match (usable(&ctx.currency), usable(&ctx.company_currency)) {
        (Some(c), _) => (c, "the object's currency"),
        (None, Some(c)) => (
            c,
            "the portal's company currency (the object has none of its own)",
        ),
        (None, None) => {
            return Err(MappingError::Missing {
                field: "CurrencyCode".into(),
                detail: "amounts are mapped but no CurrencyCode: the object has no currency \
                         (a deal's deal_currency_code) and HubSpot reported no company \
                         currency for the portal; map one (e.g. \
                         {\"const\": \"USD\", \"to\": \"CurrencyCode\"}) or set the deal's currency"
                    .into(),
            });
        }
    };
    // Before the line items, so the order-level fields stay together.
    let at = params
        .iter()
        .position(|(n, _)| n.starts_with("Item"))
        .unwrap_or(params.len());
    notes.push(format!("CurrencyCode {code} taken from {whence}"));
    params.insert(at, ("CurrencyCode".into(), code));
    Ok(())
}

/// Whether a sent parameter is a money field.
fn is_money(mappings: &[FieldMapping], name: &str) -> bool {
    mappings.iter().any(|m| {
        m.target.kind() == super::FieldKind::Money
            && match &m.target {
                Target::Field(f) => f == name,
                Target::Item(base) => name.strip_prefix(base.as_str()).is_some_and(is_index),
            }
    })
}

fn is_index(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

fn describe(s: &Source) -> String {
    match s {
        Source::Const(_) => "constant is empty".into(),
        Source::Property(p) => format!("HubSpot property {p:?} is empty"),
        other => format!(
            "{} is empty",
            other.display_from().unwrap_or_else(|| "source".into())
        ),
    }
}

/// The normalised value `mappings` give the order-level `field` for `ctx`
/// (`None`: not mapped, or its source is empty): a single field mapped
/// exactly as [`build`] maps it (used for the new `Amount` of a modification).
pub fn field_value(
    mappings: &[FieldMapping],
    field: &str,
    ctx: &Context,
) -> Result<Option<String>, MappingError> {
    let Some(m) = mappings
        .iter()
        .find(|m| m.target == Target::Field(field.to_owned()))
    else {
        return Ok(None);
    };
    value_of(m, ctx, None)
        .map(|raw| {
            normalize(m.target.kind(), &raw).map_err(|problem| MappingError::Invalid {
                field: field.to_owned(),
                problem,
            })
        })
        .transpose()
}
