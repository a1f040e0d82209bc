//! The pages. GETs render; POSTs (CSRF-checked) change the configuration
//! through [`super::ops`] and render the page again with the outcome.

// Guards return the early answer (login redirect, 403, 503) as `Err(Response)`:
// one per request, so its size does not matter.
#![allow(clippy::result_large_err)]

use std::{collections::HashMap, sync::Arc};

use axum::{
    Form,
    extract::{Query, State},
    http::{HeaderMap, StatusCode, header},
    response::{Html, IntoResponse, Redirect, Response},
};
use minijinja::{Value, context};
use serde::Serialize;
use shared::{
    events::PortalId, hubspot::PropertyInfo, mapping::target_names, object_type::ObjectType,
    portal::MappingRow, triggers::PropertyTrigger,
};

use super::{
    Website,
    ops::{self, OpError},
    preview,
    session::{self, Principal, SESSION_COOKIE},
    templates::escape,
};
use crate::AppState;

type Fields = HashMap<String, String>;

/// The website, or the 503 page saying why it is off.
pub(crate) fn site(state: &AppState) -> Result<Arc<Website>, Response> {
    state
        .website
        .clone()
        .map_err(|reason| super::unavailable(&reason))
}

/// A bare error page.
pub(crate) fn page_error(status: StatusCode, message: &str) -> Response {
    (
        status,
        Html(format!(
            "<!doctype html><title>Connector</title><h1>Something went wrong</h1>\
             <p class=error>{}</p><p><a href=\"/login\">Back to the login page</a></p>",
            escape(message)
        )),
    )
        .into_response()
}

/// The session's portal and CSRF token, or a redirect to the login page.
pub(crate) fn session_of(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<(Arc<Website>, PortalId, String), Response> {
    let site = site(state)?;
    match session::cookie(headers, SESSION_COOKIE).and_then(|v| site.sessions.check(v)) {
        Some(Principal::Portal { portal, csrf }) => Ok((site, portal, csrf)),
        _ => Err(Redirect::to("/login").into_response()),
    }
}

/// As [`session_of`], and the form's CSRF token must match (else 403).
pub(crate) fn checked_session(
    state: &AppState,
    headers: &HeaderMap,
    form: &Fields,
) -> Result<(Arc<Website>, PortalId), Response> {
    let (site, portal, csrf) = session_of(state, headers)?;
    let given = form.get("csrf").map(String::as_str).unwrap_or_default();
    if !session::same(&csrf, given) {
        return Err(page_error(
            StatusCode::FORBIDDEN,
            "This form expired or did not come from this website (CSRF check failed). Reload the page and try again.",
        ));
    }
    Ok((site, portal))
}

fn actor(portal: PortalId) -> String {
    format!("website:portal:{portal}")
}

/// What a page shows after an action.
#[derive(Default)]
struct Outcome {
    notice: Option<String>,
    errors: Vec<String>,
    warnings: Vec<String>,
    status: Option<StatusCode>,
}

impl Outcome {
    fn of(result: Result<Vec<String>, OpError>, notice: &str) -> Self {
        match result {
            Ok(warnings) => Self {
                notice: Some(notice.into()),
                warnings,
                ..Self::default()
            },
            Err(e) => Self::error(e),
        }
    }

    fn error(e: OpError) -> Self {
        let errors = match e {
            OpError::Invalid(v) => v,
            other => vec![other.to_string()],
        };
        Self {
            errors,
            status: Some(StatusCode::UNPROCESSABLE_ENTITY),
            ..Self::default()
        }
    }
}

/// Renders `template` for the portal with `extra` context.
async fn render(
    site: &Website,
    portal: PortalId,
    csrf: &str,
    template: &str,
    outcome: Outcome,
    extra: Value,
) -> Response {
    let view = match ops::view(site, portal).await {
        Ok(v) => v,
        Err(OpError::NotFound) => {
            // Deleted: the session is over.
            return (
                [(
                    header::SET_COOKIE,
                    session::set_cookie(SESSION_COOKIE, "", 0, site.secure_cookies),
                )],
                Redirect::to("/login"),
            )
                .into_response();
        }
        Err(e) => return page_error(e.status(), &e.to_string()),
    };
    let page = template.trim_end_matches(".html");
    let ctx = context! {
        portal => Value::from_serialize(&view),
        csrf => csrf,
        page => page,
        notice => outcome.notice,
        errors => outcome.errors,
        warnings => outcome.warnings,
        ..extra
    };
    html(
        site,
        template,
        ctx,
        outcome.status.unwrap_or(StatusCode::OK),
    )
}

fn html(site: &Website, template: &str, ctx: Value, status: StatusCode) -> Response {
    match site
        .templates
        .get_template(template)
        .and_then(|t| t.render(ctx))
    {
        Ok(body) => (status, Html(body)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, template, "template failed");
            page_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page could not be rendered",
            )
        }
    }
}

/// `GET /`: the settings when logged in, else the login page.
pub async fn home(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match session_of(&state, &headers) {
        Ok(_) => Redirect::to("/settings").into_response(),
        Err(r) => r,
    }
}

/// `GET /login`.
pub async fn login(State(state): State<AppState>) -> Response {
    match site(&state) {
        Ok(site) => html(
            &site,
            "login.html",
            context! { errors => Vec::<String>::new() },
            StatusCode::OK,
        ),
        Err(r) => r,
    }
}

macro_rules! session_or_return {
    ($state:expr, $headers:expr) => {
        match session_of(&$state, &$headers) {
            Ok(x) => x,
            Err(r) => return r,
        }
    };
}

macro_rules! checked_or_return {
    ($state:expr, $headers:expr, $form:expr) => {
        match checked_session(&$state, &$headers, &$form) {
            Ok((site, portal)) => {
                let csrf = $form.get("csrf").cloned().unwrap_or_default();
                (site, portal, csrf)
            }
            Err(r) => return r,
        }
    };
}

/// `GET /settings`.
pub async fn settings(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<Fields>,
) -> Response {
    let (site, portal, csrf) = session_or_return!(state, headers);
    let outcome = Outcome {
        notice: q.contains_key("installed").then(|| {
            "The app is connected to your HubSpot account. Now connect your impact.com account."
                .to_owned()
        }),
        ..Outcome::default()
    };
    render(&site, portal, &csrf, "settings.html", outcome, context! {}).await
}

/// `POST /settings`.
pub async fn save_settings(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<Fields>,
) -> Response {
    let (site, portal, csrf) = checked_or_return!(state, headers, f);
    let get = |k: &str| f.get(k).cloned().unwrap_or_default();
    let input = ops::SettingsInput {
        account_sid: get("account_sid"),
        auth_token: f.get("auth_token").cloned(),
        program_id: get("program_id"),
    };
    let result = ops::save_settings(&site, portal, input, &actor(portal)).await;
    let outcome = Outcome::of(
        result,
        "Settings saved: your impact.com account is connected.",
    );
    render(&site, portal, &csrf, "settings.html", outcome, context! {}).await
}

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
}

fn label(ty: ObjectType) -> String {
    let s = ty.as_str();
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

async fn props_or_error(
    site: &Website,
    portal: PortalId,
    ty: ObjectType,
    refresh: bool,
) -> (Vec<PropertyInfo>, Option<String>) {
    match ops::properties(site, portal, ty, refresh).await {
        Ok(p) => (p, None),
        Err(e) => (
            vec![],
            Some(format!("HubSpot properties could not be loaded: {e}")),
        ),
    }
}

async fn triggers_page(site: &Website, portal: PortalId, csrf: &str, outcome: Outcome) -> Response {
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
    let (site, portal, csrf) = session_or_return!(state, headers);
    triggers_page(&site, portal, &csrf, Outcome::default()).await
}

fn object_type(f: &Fields) -> Result<ObjectType, OpError> {
    let raw = f.get("object_type").map(String::as_str).unwrap_or_default();
    ObjectType::parse(raw)
        .ok_or_else(|| OpError::Invalid(vec![format!("unknown object type {raw:?}")]))
}

/// Edits one object type's triggers and saves them.
async fn edit_triggers(
    site: &Website,
    portal: PortalId,
    f: &Fields,
    edit: impl FnOnce(&mut shared::triggers::ObjectTriggers) -> Result<(), OpError>,
) -> Result<Vec<String>, OpError> {
    let ty = object_type(f)?;
    let mut all = ops::view(site, portal).await?.triggers;
    edit(all.entry(ty).or_default())?;
    ops::save_triggers(site, portal, all, &actor(portal)).await
}

/// `POST /triggers/active` (`object_type`, `active`).
pub async fn set_active(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<Fields>,
) -> Response {
    let (site, portal, csrf) = checked_or_return!(state, headers, f);
    let on = f.get("active").is_some_and(|v| v == "true" || v == "on");
    let result = edit_triggers(&site, portal, &f, |t| {
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
    let (site, portal, csrf) = checked_or_return!(state, headers, f);
    let property = f.get("property").cloned().unwrap_or_default();
    let result = edit_triggers(&site, portal, &f, |t| {
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
    let (site, portal, csrf) = checked_or_return!(state, headers, f);
    let property = f.get("property").cloned().unwrap_or_default();
    let result = edit_triggers(&site, portal, &f, |t| {
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

/// Computed fields offered per object type (shared::mapping::Source).
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
    let (site, portal, csrf) = session_or_return!(state, headers);
    mappings_page(&site, portal, &csrf, Outcome::default(), None).await
}

async fn edit_mappings(
    site: &Website,
    portal: PortalId,
    f: &Fields,
    edit: impl FnOnce(&mut Vec<MappingRow>) -> Result<(), OpError>,
) -> Result<Vec<String>, OpError> {
    let ty = object_type(f)?;
    let mut all = ops::view(site, portal).await?.mappings;
    edit(all.entry(ty).or_default())?;
    all.retain(|_, rows| !rows.is_empty());
    ops::save_mappings(site, portal, all, &actor(portal)).await
}

/// `POST /mappings/add` (`object_type`, `from`, `to`).
pub async fn add_mapping(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<Fields>,
) -> Response {
    let (site, portal, csrf) = checked_or_return!(state, headers, f);
    let row = MappingRow {
        from: f.get("from").cloned().filter(|s| !s.is_empty()),
        constant: None,
        to: f.get("to").cloned().unwrap_or_default(),
        value_map: None,
    };
    let result = edit_mappings(&site, portal, &f, |rows| {
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
    let (site, portal, csrf) = checked_or_return!(state, headers, f);
    let index: Option<usize> = f.get("index").and_then(|i| i.parse().ok());
    let result = edit_mappings(&site, portal, &f, |rows| match index {
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
    let (site, portal, csrf) = checked_or_return!(state, headers, f);
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

fn types_ctx() -> Value {
    let types: Vec<_> = ObjectType::ALL
        .iter()
        .map(|t| context! { name => t.as_str(), label => label(*t) })
        .collect();
    Value::from(types)
}

/// `GET /preview`.
pub async fn preview_form(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let (site, portal, csrf) = session_or_return!(state, headers);
    render(
        &site,
        portal,
        &csrf,
        "preview.html",
        Outcome::default(),
        context! { types => types_ctx() },
    )
    .await
}

/// `POST /preview` (`object_type`, `object_id`).
pub async fn preview(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<Fields>,
) -> Response {
    let (site, portal, csrf) = checked_or_return!(state, headers, f);
    let id = f
        .get("object_id")
        .and_then(|v| v.trim().parse::<u64>().ok());
    let result = match (object_type(&f), id) {
        (Ok(ty), Some(id)) => preview::preview(&site, portal, ty, id).await,
        (Err(e), _) => Err(e),
        (_, None) => Err(OpError::Invalid(vec!["the record id is a number".into()])),
    };
    match result {
        Ok(p) => {
            let extra = context! { types => types_ctx(), result => Value::from_serialize(&p) };
            render(
                &site,
                portal,
                &csrf,
                "preview.html",
                Outcome::default(),
                extra,
            )
            .await
        }
        Err(e) => {
            render(
                &site,
                portal,
                &csrf,
                "preview.html",
                Outcome::error(e),
                context! { types => types_ctx() },
            )
            .await
        }
    }
}

async fn activity_page(
    site: &Website,
    portal: PortalId,
    csrf: &str,
    mut outcome: Outcome,
) -> Response {
    let activity = match ops::activity(site, portal).await {
        Ok(a) => a,
        Err(e) => return page_error(e.status(), &e.to_string()),
    };
    if outcome.status.is_none() {
        outcome.status = Some(StatusCode::OK);
    }
    render(
        site,
        portal,
        csrf,
        "activity.html",
        outcome,
        context! { activity => Value::from_serialize(&activity) },
    )
    .await
}

/// `GET /activity`.
pub async fn activity(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let (site, portal, csrf) = session_or_return!(state, headers);
    activity_page(&site, portal, &csrf, Outcome::default()).await
}

/// `POST /activity/replay` (`id`).
pub async fn replay(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<Fields>,
) -> Response {
    let (site, portal, csrf) = checked_or_return!(state, headers, f);
    let id = f.get("id").and_then(|v| v.parse().ok()).unwrap_or(-1);
    let result = ops::replay(&site, portal, id).await.map(|()| vec![]);
    activity_page(&site, portal, &csrf, Outcome::of(result, "Replayed.")).await
}

/// `GET /account`.
pub async fn account(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let (site, portal, csrf) = session_or_return!(state, headers);
    render(
        &site,
        portal,
        &csrf,
        "account.html",
        Outcome::default(),
        context! {},
    )
    .await
}

/// `POST /account/delete` (`confirm` = `delete`).
pub async fn delete_account(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<Fields>,
) -> Response {
    let (site, portal, csrf) = checked_or_return!(state, headers, f);
    if f.get("confirm").map(|c| c.trim()) != Some("delete") {
        let outcome = Outcome::error(OpError::Invalid(vec!["Type delete to confirm.".into()]));
        return render(&site, portal, &csrf, "account.html", outcome, context! {}).await;
    }
    match ops::delete(&site, portal, &actor(portal)).await {
        Ok(()) => (
            [(header::SET_COOKIE, session::set_cookie(SESSION_COOKIE, "", 0, site.secure_cookies))],
            Html(
                "<!doctype html><title>Account deleted</title><h1 id=deleted>Account deleted</h1>\
                 <p>Your configuration and secrets are deleted; nothing more is reported to impact.com.</p>\
                 <p><a href=\"/login\">Log in through HubSpot</a> to start again.</p>",
            ),
        )
            .into_response(),
        Err(e) => render(&site, portal, &csrf, "account.html", Outcome::error(e), context! {}).await,
    }
}
