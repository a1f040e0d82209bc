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
use domain::{
    events::PortalId, mapping::target_names, object_type::ObjectType, portal::MappingRow,
    triggers::PropertyTrigger,
};
use minijinja::{Value, context};
use serde::Serialize;
use shared::hubspot::PropertyInfo;

use super::{
    Website,
    ops::{self, OpError},
    preview,
    session::{self, Principal},
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

/// The error page of a failure the visitor must not see the cause of (a
/// database error, a configuration problem): the cause goes to the log
/// under a correlation id, the page says only that id.
pub(crate) fn internal_error(what: &str, detail: impl std::fmt::Display) -> Response {
    let id = shared::http::logged(what, detail);
    page_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        &format!(
            "Something went wrong on the connector's side. Try again later; if it persists, tell the operator this reference: {id}"
        ),
    )
}

/// A logged-in request: the website, the session's portal, its CSRF token
/// and the audit log's actor (naming the HubSpot user).
pub(crate) struct Session {
    pub(crate) site: Arc<Website>,
    pub(crate) portal: PortalId,
    pub(crate) csrf: String,
    pub(crate) actor: String,
}

/// The session of the request, or a redirect to the login page.
pub(crate) async fn session_of(state: &AppState, headers: &HeaderMap) -> Result<Session, Response> {
    let site = site(state)?;
    match site.session(headers).await {
        Ok(Some(Principal::Portal { portal, csrf, user })) => Ok(Session {
            actor: user.actor("website", portal),
            site,
            portal,
            csrf,
        }),
        Ok(_) => Err(Redirect::to("/login").into_response()),
        Err(e) => Err(page_error(e.status(), &e.to_string())),
    }
}

/// As [`session_of`], and the form's CSRF token must match (else 403).
pub(crate) async fn checked_session(
    state: &AppState,
    headers: &HeaderMap,
    form: &Fields,
) -> Result<Session, Response> {
    let s = session_of(state, headers).await?;
    let given = form.get("csrf").map(String::as_str).unwrap_or_default();
    if !session::same(&s.csrf, given) {
        return Err(page_error(
            StatusCode::FORBIDDEN,
            "This form expired or did not come from this website (CSRF check failed). Reload the page and try again.",
        ));
    }
    Ok(s)
}

/// The change a form makes: its actor, and the configuration version the
/// page showed (`version`; a form without one is not checked).
fn edit<'a>(actor: &'a str, f: &Fields) -> Result<ops::Edit<'a>, OpError> {
    let version = match f.get("version").map(|v| v.trim()) {
        None | Some("") => None,
        Some(v) => Some(v.parse::<i64>().map_err(|_| {
            OpError::Invalid(vec![format!(
                "version {v:?} is not a number: reload the page"
            )])
        })?),
    };
    Ok(ops::Edit { actor, version })
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
        let status = match &e {
            OpError::Stale { .. } => StatusCode::CONFLICT,
            _ => StatusCode::UNPROCESSABLE_ENTITY,
        };
        let errors = match e {
            OpError::Invalid(v) => v,
            other => vec![other.to_string()],
        };
        Self {
            errors,
            status: Some(status),
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
                    site.cookies.clear(site.cookies.session()),
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

/// `GET /`: the dashboard when logged in, else the login page.
pub async fn home(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match session_of(&state, &headers).await {
        Ok(_) => Redirect::to("/dashboard").into_response(),
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
        match session_of(&$state, &$headers).await {
            Ok(s) => (s.site, s.portal, s.csrf, s.actor),
            Err(r) => return r,
        }
    };
}

macro_rules! checked_or_return {
    ($state:expr, $headers:expr, $form:expr) => {
        match checked_session(&$state, &$headers, &$form).await {
            Ok(s) => (s.site, s.portal, s.csrf, s.actor),
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
    let (site, portal, csrf, _) = session_or_return!(state, headers);
    let notice = if q.contains_key("installed") {
        Some("The app is connected to your HubSpot account. Now connect your impact.com account.")
    } else if q.contains_key("signed_in") {
        Some("You are signed in. Your login changed nothing else: see the notes on this page.")
    } else {
        None
    };
    let outcome = Outcome {
        notice: notice.map(str::to_owned),
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
    let (site, portal, csrf, actor) = checked_or_return!(state, headers, f);
    let get = |k: &str| f.get(k).cloned().unwrap_or_default();
    let input = ops::SettingsInput {
        account_sid: get("account_sid"),
        auth_token: f.get("auth_token").cloned(),
        program_id: get("program_id"),
    };
    let result = match edit(&actor, &f) {
        Ok(e) => ops::save_settings(&site, portal, input, e).await,
        Err(e) => Err(e),
    };
    let outcome = Outcome::of(
        result,
        "Settings saved: your impact.com account is connected.",
    );
    render(&site, portal, &csrf, "settings.html", outcome, context! {}).await
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

fn object_type(f: &Fields) -> Result<ObjectType, OpError> {
    let raw = f.get("object_type").map(String::as_str).unwrap_or_default();
    ObjectType::parse(raw)
        .ok_or_else(|| OpError::Invalid(vec![format!("unknown object type {raw:?}")]))
}

/// `GET /account`.
pub async fn account(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let (site, portal, csrf, _) = session_or_return!(state, headers);
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
    let (site, portal, csrf, actor) = checked_or_return!(state, headers, f);
    if f.get("confirm").map(|c| c.trim()) != Some("delete") {
        let outcome = Outcome::error(OpError::Invalid(vec!["Type delete to confirm.".into()]));
        return render(&site, portal, &csrf, "account.html", outcome, context! {}).await;
    }
    match ops::delete(&site, portal, &actor).await {
        Ok(()) => (
            [(header::SET_COOKIE, site.cookies.clear(site.cookies.session()))],
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

mod activity;
mod dashboard;
mod mapping_tools;
mod mappings;
mod search;
mod story;
mod triggers;

pub use activity::{activity, activity_csv, preview, preview_form, replay};
pub use dashboard::dashboard;
pub use mapping_tools::{export_document, import_document, preview_mapping};
pub use mappings::{
    add_mapping, mappings, move_mapping, refresh_properties, remove_mapping, set_value_map,
};
pub use story::{conversion, dead_letter, send_again, send_again_form};
pub use triggers::adjustments::save_adjustments;
pub use triggers::{add_trigger, remove_trigger, set_active, triggers};
