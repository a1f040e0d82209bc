//! The Field Mappings page's tools: the portal document's export
//! (download, with its version as `ETag`) and import (a pasted document,
//! applied on top of the version the page showed), and the live preview
//! beside the editor: pick a recent record (or type an id), see the exact
//! parameters, where each came from, and what is missing.

use super::mappings::mappings_page_with;
use super::*;

/// `GET /mappings/export`: the portal document as a JSON download
/// (secrets left out), `ETag` its version.
pub async fn export_document(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let (site, portal, _, _) = session_or_return!(state, headers);
    match ops::export(&site, portal).await {
        Ok((text, version)) => (
            [
                (header::CONTENT_TYPE, "application/json".to_owned()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"portal-{portal}.json\""),
                ),
                (header::ETAG, format!("\"{version}\"")),
            ],
            text,
        )
            .into_response(),
        Err(e) => page_error(e.status(), &e.to_string()),
    }
}

/// `POST /mappings/import` (`document`, `version`): applies the pasted
/// document's triggers, mappings and adjustment rules.
pub async fn import_document(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<Fields>,
) -> Response {
    let (site, portal, csrf, actor) = checked_or_return!(state, headers, f);
    let text = f.get("document").map(String::as_str).unwrap_or_default();
    let result = match super::edit(&actor, &f) {
        Ok(e) => ops::import(&site, portal, text, e).await,
        Err(e) => Err(e),
    };
    let keep = result.is_err().then(|| text.to_owned());
    let outcome = Outcome::of(
        result,
        "Document imported: event triggers, field mappings and adjustment rules replaced.",
    );
    mappings_page_with(
        &site,
        portal,
        &csrf,
        outcome,
        None,
        context! { document => keep },
    )
    .await
}

/// The preview's record: a picked `type:id`, or a typed type and id
/// (the typed id wins).
fn record(f: &Fields) -> Result<(ObjectType, u64), OpError> {
    let typed = f
        .get("object_id")
        .map(|v| v.trim())
        .filter(|v| !v.is_empty());
    let (ty, id) = match typed {
        Some(id) => (
            f.get("object_type").cloned().unwrap_or_default(),
            id.to_owned(),
        ),
        None => {
            let picked = f.get("record").map(String::as_str).unwrap_or_default();
            let (t, i) = picked
                .split_once(':')
                .ok_or_else(|| OpError::Invalid(vec!["pick a record or type its id".into()]))?;
            (t.to_owned(), i.to_owned())
        }
    };
    let ty = ObjectType::parse(&ty)
        .ok_or_else(|| OpError::Invalid(vec![format!("unknown object type {ty:?}")]))?;
    let id = id
        .parse::<u64>()
        .map_err(|_| OpError::Invalid(vec!["the record id is a number".into()]))?;
    Ok((ty, id))
}

/// Where parameter `param` came from, per the rows (`ItemSku2` from
/// `ItemSku{i}`): the row's source, or the connector's own default.
fn source_of(param: &str, rows: &[MappingRow]) -> String {
    let row = rows.iter().find(|r| {
        r.to == param
            || r.to.strip_suffix("{i}").is_some_and(|base| {
                param
                    .strip_prefix(base)
                    .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            })
    });
    match row {
        Some(r) => match (&r.from, &r.constant) {
            (Some(from), _) => {
                let mapped = if r.value_map.is_some() {
                    " (through its value map)"
                } else {
                    ""
                };
                format!("{from}{mapped}")
            }
            (None, Some(c)) => format!("constant \"{c}\""),
            _ => String::new(),
        },
        None => "set by the connector".to_owned(),
    }
}

/// `POST /mappings/preview` (`record`, or `object_type` and `object_id`):
/// the page with the preview beside the editor.
pub async fn preview_mapping(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<Fields>,
) -> Response {
    let (site, portal, csrf, _) = checked_or_return!(state, headers, f);
    let (ty, id) = match record(&f) {
        Ok(r) => r,
        Err(e) => {
            return mappings_page_with(&site, portal, &csrf, Outcome::error(e), None, context! {})
                .await;
        }
    };
    let result = preview::preview(&site, portal, ty, id).await;
    let view = ops::view(&site, portal).await.ok();
    let rows = view
        .as_ref()
        .and_then(|v| v.mappings.get(&ty).cloned())
        .unwrap_or_default();
    let unmapped = view
        .as_ref()
        .and_then(|v| v.unmapped.get(&ty).cloned())
        .unwrap_or_default();
    match result {
        Ok(p) => {
            let params: Vec<_> = p
                .params
                .iter()
                .flatten()
                .map(|(k, v)| context! { name => k, value => v, source => source_of(k, &rows) })
                .collect();
            let extra = context! {
                preview => context! {
                    object_type => ty.as_str(),
                    object_id => id,
                    sendable => p.params.is_some(),
                    params => params,
                    problem => p.problem,
                    notes => p.notes,
                    unmapped => unmapped,
                },
            };
            mappings_page_with(&site, portal, &csrf, Outcome::default(), None, extra).await
        }
        Err(e) => {
            mappings_page_with(&site, portal, &csrf, Outcome::error(e), None, context! {}).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(from: Option<&str>, constant: Option<&str>, to: &str) -> MappingRow {
        MappingRow {
            from: from.map(str::to_owned),
            constant: constant.map(str::to_owned),
            to: to.into(),
            value_map: None,
        }
    }

    #[test]
    fn each_parameter_names_its_source() {
        let rows = [
            row(Some("line_item{i}.hs_sku"), None, "ItemSku{i}"),
            row(None, Some("Shoes"), "ItemCategory{i}"),
            row(Some("hs_object_id"), None, "OrderId"),
        ];
        assert_eq!(source_of("ItemSku12", &rows), "line_item{i}.hs_sku");
        assert_eq!(source_of("ItemCategory1", &rows), "constant \"Shoes\"");
        assert_eq!(source_of("OrderId", &rows), "hs_object_id");
        assert_eq!(source_of("CampaignId", &rows), "set by the connector");
        assert_eq!(source_of("ItemSkuX", &rows), "set by the connector");
    }
}
