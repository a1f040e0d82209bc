//! Event Triggers: Active (on creation) and property-change triggers.

use super::*;

pub(super) mod adjustments;

#[derive(Serialize)]
struct TriggerRow {
    property: String,
    label: String,
}

#[derive(Serialize)]
struct TypeTriggers {
    name: &'static str,
    label: String,
    on_create: bool,
    on_change: Vec<TriggerRow>,
    properties: Vec<PropertyInfo>,
    properties_error: Option<String>,
    adjust: adjustments::AdjustForm,
}

pub(super) async fn triggers_page(
    site: &Website,
    portal: PortalId,
    csrf: &str,
    outcome: Outcome,
) -> Response {
    let view = match ops::view(site, portal).await {
        Ok(v) => v,
        Err(e) => return page_error(e.status(), &e.to_string()),
    };
    let mut types = vec![];
    for ty in ObjectType::ALL {
        let (properties, properties_error) = props_or_error(site, portal, ty, false).await;
        let t = view.triggers.get(&ty).cloned().unwrap_or_default();
        let on_change = t
            .on_change
            .iter()
            .map(|p| TriggerRow {
                label: properties
                    .iter()
                    .find(|i| i.name == p.property)
                    .map(|i| i.label.clone())
                    .unwrap_or_else(|| p.property.clone()),
                property: p.property.clone(),
            })
            .collect();
        types.push(TypeTriggers {
            name: ty.as_str(),
            label: label(ty),
            on_create: t.on_create,
            on_change,
            properties,
            properties_error,
            adjust: adjustments::form_of(&view.adjustments.get(&ty).cloned().unwrap_or_default()),
        });
    }
    render(
        site,
        portal,
        csrf,
        "triggers.html",
        outcome,
        context! { types => Value::from_serialize(&types) },
    )
    .await
}

/// `GET /triggers`.
pub async fn triggers(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let (site, portal, csrf, _) = session_or_return!(state, headers);
    triggers_page(&site, portal, &csrf, Outcome::default()).await
}

/// Edits one object type's triggers and saves them.
async fn edit_triggers(
    site: &Website,
    portal: PortalId,
    actor: &str,
    f: &Fields,
    change: impl FnOnce(&mut domain::triggers::ObjectTriggers) -> Result<(), OpError>,
) -> Result<Vec<String>, OpError> {
    let ty = object_type(f)?;
    let by = super::edit(actor, f)?;
    let mut all = ops::view(site, portal).await?.triggers;
    change(all.entry(ty).or_default())?;
    ops::save_triggers(site, portal, all, by).await
}

/// `POST /triggers/active` (`object_type`, `active`).
pub async fn set_active(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<Fields>,
) -> Response {
    let (site, portal, csrf, actor) = checked_or_return!(state, headers, f);
    let on = f.get("active").is_some_and(|v| v == "true" || v == "on");
    let result = edit_triggers(&site, portal, &actor, &f, |t| {
        t.on_create = on;
        Ok(())
    })
    .await;
    triggers_page(
        &site,
        portal,
        &csrf,
        Outcome::of(result, "Event triggers saved."),
    )
    .await
}

/// `POST /triggers/add` (`object_type`, `property`).
pub async fn add_trigger(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<Fields>,
) -> Response {
    let (site, portal, csrf, actor) = checked_or_return!(state, headers, f);
    let property = f.get("property").cloned().unwrap_or_default();
    let result = edit_triggers(&site, portal, &actor, &f, |t| {
        if property.is_empty() {
            return Err(OpError::Invalid(vec!["choose a property".into()]));
        }
        if !t.on_change.iter().any(|p| p.property == property) {
            t.on_change.push(PropertyTrigger {
                property: property.clone(),
                only_values: None,
            });
        }
        Ok(())
    })
    .await;
    triggers_page(&site, portal, &csrf, Outcome::of(result, "Trigger added.")).await
}

/// `POST /triggers/remove` (`object_type`, `property`).
pub async fn remove_trigger(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<Fields>,
) -> Response {
    let (site, portal, csrf, actor) = checked_or_return!(state, headers, f);
    let property = f.get("property").cloned().unwrap_or_default();
    let result = edit_triggers(&site, portal, &actor, &f, |t| {
        t.on_change.retain(|p| p.property != property);
        Ok(())
    })
    .await;
    triggers_page(
        &site,
        portal,
        &csrf,
        Outcome::of(result, "Trigger removed."),
    )
    .await
}
