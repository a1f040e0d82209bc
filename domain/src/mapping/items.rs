//! Line items: `line_item{i}.<property>` sources (and constants, which apply
//! to every item alike) → `Item<Field>{i}`, indexed from 1 without gaps, with
//! what impact.com requires of every item it is sent: `ItemSku{i}`,
//! `ItemCategory{i}` and `ItemQuantity{i}`, a whole number (impact.com
//! derives the line total from `ItemPrice{i}` × `ItemQuantity{i}`). Unless
//! `ItemQuantity{i}` is mapped, it is the line item's own `quantity`.

use super::{
    Context, FieldKind, FieldMapping, MappingError, Properties, Source, Target, normalize,
    value::value_of,
};

/// The item fields impact.com requires for every item sent.
pub const REQUIRED_ITEM_FIELDS: [&str; 3] = ["ItemSku", "ItemCategory", "ItemQuantity"];

/// The line-item property `ItemQuantity{i}` comes from unless it is mapped.
pub const QUANTITY_PROPERTY: &str = "quantity";

/// Whether `mappings` send items whose `ItemQuantity{i}` is the line item's
/// own `quantity`: a field comes from the line items, and nothing maps
/// `ItemQuantity{i}`.
pub fn default_quantity(mappings: &[FieldMapping]) -> bool {
    mappings
        .iter()
        .any(|m| matches!(m.source, Source::LineItem(_)))
        && !mappings
            .iter()
            .any(|m| m.target == Target::Item("ItemQuantity".into()))
}

/// How to map a required item field, for messages (document form).
pub fn suggested_mapping(field: &str) -> &'static str {
    match field {
        "ItemSku" => r#"{"from": "line_item{i}.hs_sku", "to": "ItemSku{i}"}"#,
        "ItemQuantity" => r#"{"from": "line_item{i}.quantity", "to": "ItemQuantity{i}"}"#,
        _ => {
            r#"a constant, {"const": "<your impact.com product category>", "to": "ItemCategory{i}"}, or a line-item property holding the category, {"from": "line_item{i}.<property>", "to": "ItemCategory{i}"}"#
        }
    }
}

/// Appends the items of `ctx` to `params`, or says which one cannot be sent.
pub(super) fn expand(
    mappings: &[FieldMapping],
    ctx: &Context,
    params: &mut Vec<(String, String)>,
) -> Result<(), MappingError> {
    let rows: Vec<&FieldMapping> = mappings
        .iter()
        .filter(|m| matches!(m.target, Target::Item(_)))
        .collect();
    if rows.is_empty() {
        return Ok(());
    }
    let default_quantity = default_quantity(mappings);
    let mut index = 0;
    for (position, item) in ctx.line_items.iter().enumerate() {
        let values: Vec<(&FieldMapping, Option<String>)> = rows
            .iter()
            .map(|m| (*m, value_of(m, ctx, Some(position))))
            .collect();
        // An item none of whose own properties is mapped is skipped (so
        // indexes have no gaps); constants alone do not make an item.
        let own = values
            .iter()
            .any(|(m, v)| v.is_some() && matches!(m.source, Source::LineItem(_)));
        if !own {
            continue;
        }
        index += 1;
        let line = Line {
            index,
            item,
            rows: &rows,
        };
        let mut sent: Vec<(&str, String)> = Vec::new();
        for (m, value) in values {
            if let (Target::Item(base), Some(raw)) = (&m.target, value) {
                sent.push((base, line.normalize(base, m.target.kind(), &raw)?));
            }
        }
        if default_quantity && let Some(q) = property(item, QUANTITY_PROPERTY) {
            let q = line.normalize("ItemQuantity", FieldKind::Integer, q)?;
            sent.push(("ItemQuantity", q));
        }
        line.check(&sent)?;
        params.extend(sent.into_iter().map(|(b, v)| (format!("{b}{index}"), v)));
    }
    Ok(())
}

/// A line item's non-empty property.
fn property<'a>(item: &'a Properties, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|v| v.as_deref())
        .filter(|v| !v.trim().is_empty())
}

/// One item being sent, for its checks and messages.
struct Line<'a> {
    /// Its index in the conversion (`ItemSku{index}`).
    index: usize,
    /// The line item's properties.
    item: &'a Properties,
    /// The item mapping rows.
    rows: &'a [&'a FieldMapping],
}

impl Line<'_> {
    /// `line item 2 (HubSpot line item 123)`.
    fn describe(&self) -> String {
        match property(self.item, "hs_object_id") {
            Some(id) => format!("line item {} (HubSpot line item {id})", self.index),
            None => format!("line item {}", self.index),
        }
    }

    fn normalize(&self, base: &str, kind: FieldKind, raw: &str) -> Result<String, MappingError> {
        let field = format!("{base}{}", self.index);
        let v = normalize(kind, raw).map_err(|problem| MappingError::Invalid {
            field: field.clone(),
            problem: if base == "ItemQuantity" {
                format!(
                    "{problem} ({}): impact.com counts whole units",
                    self.describe()
                )
            } else {
                format!("{problem} ({})", self.describe())
            },
        })?;
        if base == "ItemQuantity" && v.starts_with('-') {
            return Err(MappingError::Invalid {
                field,
                problem: format!("{v} is negative ({})", self.describe()),
            });
        }
        Ok(v)
    }

    /// Every field impact.com requires of an item is there.
    fn check(&self, sent: &[(&str, String)]) -> Result<(), MappingError> {
        for field in REQUIRED_ITEM_FIELDS {
            if !sent.iter().any(|(b, _)| *b == field) {
                return Err(MappingError::Missing {
                    field: format!("{field}{}", self.index),
                    detail: self.why_missing(field),
                });
            }
        }
        Ok(())
    }

    fn why_missing(&self, field: &str) -> String {
        let which = self.describe();
        let row = self
            .rows
            .iter()
            .find(|m| m.target == Target::Item(field.to_owned()));
        let required = "impact.com requires ItemSku, ItemCategory and ItemQuantity for every item";
        match (row, field) {
            (Some(m), _) => {
                let source = match &m.source {
                    Source::LineItem(p) => format!("its {p}"),
                    other => other
                        .display_from()
                        .unwrap_or_else(|| "the constant".into()),
                };
                format!("{which}: {field}{{i}} is mapped but {source} is empty ({required})")
            }
            (None, "ItemQuantity") => format!(
                "{which} has no quantity ({required}): set its quantity in HubSpot, or map {}",
                suggested_mapping(field)
            ),
            (None, _) => format!(
                "nothing maps {field}{{i}} ({required}); map {}",
                suggested_mapping(field)
            ),
        }
    }
}
