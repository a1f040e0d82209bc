//! Field Mappings: add, remove, reorder, value maps, refresh custom
//! properties; unmapped required fields; how each field is sent (e-mail
//! addresses hashed, amounts, line items). The document's import and
//! export and the live preview beside the editor are in [`super::mapping_tools`].

use std::collections::BTreeMap;

use domain::mapping::{FieldKind, Target};

use super::*;

/// A mapping row as the editor shows it.
#[derive(Serialize)]
struct RowView {
    from: Option<String>,
    #[serde(rename = "const")]
    constant: Option<String>,
    to: String,
    /// The value map, one `HubSpot value = impact.com value` a line.
    value_map: String,
    value_map_len: usize,
    /// How the field is sent, in words.
    sent_as: String,
    /// A line-item field (`ItemSku{i}`).
    item: bool,
}

/// A record the preview offers: `contacts:123`, labelled.
#[derive(Serialize)]
struct Recent {
    value: String,
    label: String,
}

/// The portal's records seen lately (conversions and dead letters), newest
/// first: what the preview offers to pick.
async fn recent_records(site: &Website, portal: PortalId) -> Vec<Recent> {
    let rows: Result<Vec<(String, i64)>, _> = sqlx::query_as(
        "SELECT object_type, object_id FROM (
             SELECT object_type, object_id, updated_at AS at FROM conversions WHERE portal_id = $1
             UNION ALL
             SELECT object_type, object_id, created_at AS at FROM dead_letters
             WHERE portal_id = $1 AND object_type IS NOT NULL AND object_id IS NOT NULL
         ) r GROUP BY object_type, object_id ORDER BY max(at) DESC LIMIT 20",
    )
    .bind(portal.db_key())
    .fetch_all(&site.pool)
    .await;
    rows.unwrap_or_default()
        .into_iter()
        .map(|(ty, id)| Recent {
            value: format!("{ty}:{id}"),
            label: format!("{ty} {id}"),
        })
        .collect()
}

/// How a field is normalised before it is sent, in words.
pub(super) fn sent_as(to: &str) -> (String, bool) {
    let Ok(target) = Target::parse(to) else {
        return ("unknown field".into(), false);
    };
    let item = matches!(target, Target::Item(_));
    let mut text = match target.kind() {
        FieldKind::EmailHash => {
            "SHA-1 hash of the trimmed, lower-cased e-mail address (never sent in clear)".to_owned()
        }
        FieldKind::Money => "amount, at most 2 decimals (needs CurrencyCode)".to_owned(),
        FieldKind::Date => "date-time, sent in UTC".to_owned(),
        FieldKind::Integer => "whole number".to_owned(),
        FieldKind::Decimal => "number".to_owned(),
        FieldKind::Text(n) => format!("text, at most {n} characters"),
    };
    if item {
        text.push_str("; one per line item (1, 2, …)");
    }
    (text, item)
}

fn row_view(m: &MappingRow) -> RowView {
    let (sent, item) = sent_as(&m.to);
    RowView {
        from: m.from.clone(),
        constant: m.constant.clone(),
        to: m.to.clone(),
        value_map: m
            .value_map
            .as_ref()
            .map(|v| {
                v.iter()
                    .map(|(k, v)| format!("{k} = {v}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .unwrap_or_default(),
        value_map_len: m.value_map.as_ref().map_or(0, BTreeMap::len),
        sent_as: sent,
        item,
    }
}

/// A value map from the form's text: one `HubSpot value = impact.com
/// value` a line (split at the first `=`); empty: no value map.
fn parse_value_map(text: &str) -> Result<Option<BTreeMap<String, String>>, OpError> {
    let mut map = BTreeMap::new();
    let mut errors = vec![];
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        match line.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => {
                map.insert(k.trim().to_owned(), v.trim().to_owned());
            }
            _ => errors.push(format!(
                "value map line {}: {line:?} is not `HubSpot value = impact.com value`",
                n + 1
            )),
        }
    }
    if !errors.is_empty() {
        return Err(OpError::Invalid(errors));
    }
    Ok((!map.is_empty()).then_some(map))
}

#[derive(Serialize)]
struct SourceOption {
    value: String,
    label: String,
}

#[derive(Serialize)]
struct TypeMappings {
    name: &'static str,
    label: String,
    rows: Vec<RowView>,
    unmapped: Vec<&'static str>,
    sources: Vec<SourceOption>,
    properties_error: Option<String>,
}

/// Computed fields offered per object type (domain::mapping::Source).
fn computed(ty: ObjectType) -> Vec<(&'static str, &'static str)> {
    let mut v = match ty {
        ObjectType::Contacts => vec![(
            "contact_[lead_status]_id",
            "Contact Lead Status ID (computed)",
        )],
        ObjectType::Deals => vec![
            ("deal_[stage]_id", "Deal Stage ID (computed)"),
            ("deal_[deal stage]", "Deal Stage label (computed)"),
            (
                "associated_contact_id",
                "Associated contact's ID (computed)",
            ),
        ],
        ObjectType::Companies => vec![],
    };
    v.push(("event_occurred_at", "When the change happened (computed)"));
    v
}

/// Line-item properties offered as `line_item{i}.*` for deals.
const LINE_ITEM_PROPERTIES: &[&str] = &[
    "hs_sku",
    "name",
    "price",
    "quantity",
    "amount",
    "hs_product_id",
    "discount",
];

async fn mappings_page(
    site: &Website,
    portal: PortalId,
    csrf: &str,
    outcome: Outcome,
    refresh: Option<ObjectType>,
) -> Response {
    mappings_page_with(site, portal, csrf, outcome, refresh, context! {}).await
}

/// The page with `extra` context (the preview beside the editor).
pub(super) async fn mappings_page_with(
    site: &Website,
    portal: PortalId,
    csrf: &str,
    outcome: Outcome,
    refresh: Option<ObjectType>,
    extra: Value,
) -> Response {
    let view = match ops::view(site, portal).await {
        Ok(v) => v,
        Err(e) => return page_error(e.status(), &e.to_string()),
    };
    let mut types = vec![];
    for ty in ObjectType::ALL {
        let (props, properties_error) = props_or_error(site, portal, ty, refresh == Some(ty)).await;
        let mut sources: Vec<SourceOption> = props
            .iter()
            .map(|p| SourceOption {
                value: p.name.clone(),
                label: format!(
                    "{} ({}){}",
                    p.label,
                    p.name,
                    if p.hubspot_defined { "" } else { " – custom" }
                ),
            })
            .collect();
        sources.extend(computed(ty).into_iter().map(|(v, l)| SourceOption {
            value: v.into(),
            label: l.into(),
        }));
        if ty == ObjectType::Deals {
            sources.extend(LINE_ITEM_PROPERTIES.iter().map(|p| SourceOption {
                value: format!("line_item{{i}}.{p}"),
                label: format!("Line item {p} (line_item{{i}}.{p})"),
            }));
        }
        types.push(TypeMappings {
            name: ty.as_str(),
            label: label(ty),
            rows: view
                .mappings
                .get(&ty)
                .map(|rows| rows.iter().map(row_view).collect())
                .unwrap_or_default(),
            unmapped: view.unmapped.get(&ty).cloned().unwrap_or_default(),
            sources,
            properties_error,
        });
    }
    let recent = recent_records(site, portal).await;
    let extra = context! {
        types => Value::from_serialize(&types),
        targets => target_names(),
        recent => recent,
        limits => context! {
            rows => domain::portal::limits::MAX_MAPPINGS_PER_OBJECT,
            value_map => domain::portal::limits::MAX_VALUE_MAP_ENTRIES,
            document_kib => domain::portal::limits::MAX_DOCUMENT_BYTES / 1024,
        },
        ..extra
    };
    render(site, portal, csrf, "mappings.html", outcome, extra).await
}

/// `GET /mappings`.
pub async fn mappings(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let (site, portal, csrf, _) = session_or_return!(state, headers);
    mappings_page(&site, portal, &csrf, Outcome::default(), None).await
}

/// Changes one object type's mappings as the page showed them: the form's
/// `version` must still be current, so a row `index` names the row the
/// user saw (another change since is refused, never mixed up).
pub(super) async fn edit_mappings(
    site: &Website,
    portal: PortalId,
    actor: &str,
    f: &Fields,
    change: impl FnOnce(&mut Vec<MappingRow>) -> Result<(), OpError>,
) -> Result<Vec<String>, OpError> {
    let ty = object_type(f)?;
    let by = super::edit(actor, f)?;
    let view = ops::view(site, portal).await?;
    if let Some(expected) = by.version.filter(|v| *v != view.version) {
        return Err(OpError::Stale {
            expected,
            current: view.version,
        });
    }
    let mut all = view.mappings;
    change(all.entry(ty).or_default())?;
    all.retain(|_, rows| !rows.is_empty());
    ops::save_mappings(site, portal, all, by).await
}

/// `POST /mappings/add` (`object_type`, `from` or `const`, `to`): a
/// non-empty `const` wins over the `from` picker (a constant applies to
/// every line item when `to` is an item field).
pub async fn add_mapping(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<Fields>,
) -> Response {
    let (site, portal, csrf, actor) = checked_or_return!(state, headers, f);
    let constant = f
        .get("const")
        .map(|c| c.trim().to_owned())
        .filter(|c| !c.is_empty());
    let row = MappingRow {
        from: f
            .get("from")
            .cloned()
            .filter(|s| !s.is_empty() && constant.is_none()),
        constant,
        to: f.get("to").cloned().unwrap_or_default(),
        value_map: match parse_value_map(f.get("value_map").map_or("", String::as_str)) {
            Ok(m) => m,
            Err(e) => {
                return mappings_page(&site, portal, &csrf, Outcome::error(e), None).await;
            }
        },
    };
    let result = edit_mappings(&site, portal, &actor, &f, |rows| {
        rows.push(row);
        Ok(())
    })
    .await;
    mappings_page(
        &site,
        portal,
        &csrf,
        Outcome::of(result, "Mapping added."),
        None,
    )
    .await
}

/// `POST /mappings/remove` (`object_type`, `index`).
pub async fn remove_mapping(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<Fields>,
) -> Response {
    let (site, portal, csrf, actor) = checked_or_return!(state, headers, f);
    let index: Option<usize> = f.get("index").and_then(|i| i.parse().ok());
    let result = edit_mappings(&site, portal, &actor, &f, |rows| match index {
        Some(i) if i < rows.len() => {
            rows.remove(i);
            Ok(())
        }
        _ => Err(OpError::Invalid(vec!["no such mapping row".into()])),
    })
    .await;
    mappings_page(
        &site,
        portal,
        &csrf,
        Outcome::of(result, "Mapping removed."),
        None,
    )
    .await
}

/// `POST /mappings/refresh` (`object_type`): reloads custom properties.
pub async fn refresh_properties(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<Fields>,
) -> Response {
    let (site, portal, csrf, _) = checked_or_return!(state, headers, f);
    match object_type(&f) {
        Ok(ty) => {
            let outcome = Outcome {
                notice: Some(format!("{} properties reloaded from HubSpot.", label(ty))),
                ..Outcome::default()
            };
            mappings_page(&site, portal, &csrf, outcome, Some(ty)).await
        }
        Err(e) => mappings_page(&site, portal, &csrf, Outcome::error(e), None).await,
    }
}

/// `POST /mappings/value-map` (`object_type`, `index`, `value_map`):
/// replaces one row's value map (empty: none).
pub async fn set_value_map(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<Fields>,
) -> Response {
    let (site, portal, csrf, actor) = checked_or_return!(state, headers, f);
    let index: Option<usize> = f.get("index").and_then(|i| i.parse().ok());
    let result = match parse_value_map(f.get("value_map").map_or("", String::as_str)) {
        Ok(map) => {
            edit_mappings(&site, portal, &actor, &f, |rows| match index {
                Some(i) if i < rows.len() => {
                    rows[i].value_map = map;
                    Ok(())
                }
                _ => Err(OpError::Invalid(vec!["no such mapping row".into()])),
            })
            .await
        }
        Err(e) => Err(e),
    };
    mappings_page(
        &site,
        portal,
        &csrf,
        Outcome::of(result, "Value map saved."),
        None,
    )
    .await
}

/// `POST /mappings/move` (`object_type`, `index`, `direction` = `up` or
/// `down`): the order rows are applied and listed in.
pub async fn move_mapping(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<Fields>,
) -> Response {
    let (site, portal, csrf, actor) = checked_or_return!(state, headers, f);
    let index: Option<usize> = f.get("index").and_then(|i| i.parse().ok());
    let up = f.get("direction").map(String::as_str) == Some("up");
    let result = edit_mappings(&site, portal, &actor, &f, |rows| {
        let i = index
            .filter(|i| *i < rows.len())
            .ok_or_else(|| OpError::Invalid(vec!["no such mapping row".into()]))?;
        let j = if up { i.checked_sub(1) } else { Some(i + 1) }
            .filter(|j| *j < rows.len())
            .ok_or_else(|| OpError::Invalid(vec!["the row cannot move further".into()]))?;
        rows.swap(i, j);
        Ok(())
    })
    .await;
    mappings_page(
        &site,
        portal,
        &csrf,
        Outcome::of(result, "Mapping moved."),
        None,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_maps_are_read_line_by_line() {
        let m = parse_value_map("NEW = 1\n\n  OPEN=2 = x \n").expect("valid");
        let m = m.expect("a map");
        assert_eq!(m.get("NEW").map(String::as_str), Some("1"));
        assert_eq!(m.get("OPEN").map(String::as_str), Some("2 = x"));
        assert_eq!(parse_value_map(" \n").expect("valid"), None);
        assert!(parse_value_map("no separator").is_err());
        assert!(parse_value_map("= 3").is_err());
    }

    #[test]
    fn emails_are_said_to_be_hashed_and_items_per_line_item() {
        assert!(sent_as("CustomerEmail").0.contains("SHA-1"));
        let (text, item) = sent_as("ItemSku{i}");
        assert!(item && text.contains("per line item"), "{text}");
        assert!(sent_as("Amount").0.contains("2 decimals"));
    }
}
