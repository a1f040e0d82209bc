//! Field Mappings: add, remove, refresh custom properties; unmapped required fields.

use super::*;

#[derive(Serialize)]
struct SourceOption {
    value: String,
    label: String,
}

#[derive(Serialize)]
struct TypeMappings {
    name: &'static str,
    label: String,
    rows: Vec<MappingRow>,
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
            rows: view.mappings.get(&ty).cloned().unwrap_or_default(),
            unmapped: view.unmapped.get(&ty).cloned().unwrap_or_default(),
            sources,
            properties_error,
        });
    }
    let extra = context! { types => Value::from_serialize(&types), targets => target_names() };
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
async fn edit_mappings(
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
        value_map: None,
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
