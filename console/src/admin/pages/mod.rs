//! The operators' pages on the admin listener (`/admin/...`, next to the
//! admin API): log in with an operator token (a cookie session, CSRF on
//! every form, audited under the token's name), every portal's health,
//! dead letters across portals with filters, bulk replay after a dry-run
//! estimate with a progress bar, and the audit log. Server-rendered HTML
//! with no script: a page in progress refreshes itself (`<meta refresh>`).
//! A wrong token counts towards the admin API's lockout
//! ([`crate::operators`]).

// Guards return the early answer (login redirect, 403, 503) as `Err(Response)`.
#![allow(clippy::result_large_err)]

mod data;
mod estimate;
mod login;
mod replay;
pub mod sessions;
mod templates;
mod views;

use std::collections::HashMap;

use axum::{
    Router,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{Html, IntoResponse, Redirect, Response},
    routing::{get, post},
};
use minijinja::{Value, context};

use super::{AdminState, AdminStore};
use sessions::OpSession;
use tower_http::set_header::SetResponseHeaderLayer;

pub use estimate::{Progress, progress};

type Fields = HashMap<String, String>;

/// The pages' routes (their own guard: the session cookie).
pub fn routes() -> Router<AdminState> {
    Router::new()
        .route("/admin", get(|| async { Redirect::to("/admin/portals") }))
        .route("/admin/login", get(login::login_form).post(login::login))
        .route("/admin/logout", post(login::logout))
        .route("/admin/portals", get(views::portals))
        .route("/admin/dead-letters", get(views::dead_letters_page))
        .route("/admin/dead-letters/estimate", post(replay::estimate))
        .route("/admin/replays/{id}", get(replay::show))
        .route("/admin/replays/{id}/progress", get(replay::progress_json))
        .route("/admin/replays/{id}/confirm", post(replay::confirm))
        .route("/admin/audit", get(views::audit_log))
        .merge(crate::web::headers::routes())
        .layer(axum::extract::DefaultBodyLimit::max(64 * 1024))
        // The pages' own forms then carry their `Origin` (under the
        // website's `no-referrer` a browser sends `Origin: null`, which
        // [`same_origin`] refuses, as it would a cross-site post).
        .layer(SetResponseHeaderLayer::if_not_present(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ))
}

/// A bare error page.
fn page_error(status: StatusCode, message: &str) -> Response {
    (
        status,
        Html(format!(
            "<!doctype html><html lang=\"en\"><title>Operators</title><h1>Something went wrong</h1>\
             <p>{}</p><p><a href=\"/admin/portals\">Back</a></p></html>",
            crate::web::templates::escape(message)
        )),
    )
        .into_response()
}

/// The database error page (the cause goes to the log).
fn db_error(e: sqlx::Error) -> Response {
    let id = shared::http::logged("operators' pages: database error", e);
    page_error(
        StatusCode::SERVICE_UNAVAILABLE,
        &format!("The database is unreachable; try again. Reference: {id}"),
    )
}

/// The store, or the 503 page saying it is not configured.
fn store(state: &AdminState) -> Result<&AdminStore, Response> {
    match &state.store {
        Some(Ok(w)) => Ok(w),
        _ => Err(page_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the store is not configured (CONNECTOR_DATABASE_URL, CONNECTOR_ENCRYPTION_KEY)",
        )),
    }
}

/// The operator of the request, or a redirect to the login page (503
/// when operator tokens are off).
fn operator(state: &AdminState, headers: &HeaderMap) -> Result<OpSession, Response> {
    if let Err(why) = &state.auth {
        return Err(page_error(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("The operators' pages are off: {why}"),
        ));
    }
    state
        .pages
        .sessions
        .find(headers)
        .ok_or_else(|| Redirect::to("/admin/login").into_response())
}

/// Refuses a cross-site post: its `Origin` (when the browser sends one)
/// must be this host (`null`, what a page with `no-referrer` sends, is
/// refused too).
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    url::Url::parse(origin).is_ok_and(|u| {
        let with_port = match u.port() {
            Some(p) => format!("{}:{p}", u.host_str().unwrap_or_default()),
            None => u.host_str().unwrap_or_default().to_owned(),
        };
        with_port.eq_ignore_ascii_case(host)
    })
}

/// The operator of a form post whose CSRF token (and origin) are good.
fn checked(state: &AdminState, headers: &HeaderMap, f: &Fields) -> Result<OpSession, Response> {
    let op = operator(state, headers)?;
    let given = f.get("csrf").map(String::as_str).unwrap_or_default();
    if !op.csrf_ok(given) || !same_origin(headers) {
        return Err(page_error(
            StatusCode::FORBIDDEN,
            "This form expired or did not come from this page (CSRF check failed). Reload the page and try again.",
        ));
    }
    Ok(op)
}

/// Renders an operators' page.
fn render(state: &AdminState, op: Option<&OpSession>, template: &str, ctx: Value) -> Response {
    render_status(state, op, template, ctx, StatusCode::OK)
}

fn render_status(
    state: &AdminState,
    op: Option<&OpSession>,
    template: &str,
    ctx: Value,
    status: StatusCode,
) -> Response {
    let page = template
        .trim_start_matches("ops/")
        .trim_end_matches(".html");
    let ctx = context! {
        operator => op.map(|o| o.name.clone()),
        csrf => op.map(|o| o.csrf.clone()),
        page => page,
        ..ctx
    };
    match state
        .pages
        .templates
        .get_template(template)
        .and_then(|t| t.render(ctx))
    {
        Ok(body) => (status, Html(body)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, template, "operators' template failed");
            page_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page could not be rendered",
            )
        }
    }
}

/// Records what an operator did or read; a row that cannot be written
/// fails the page (nothing personal is shown unaudited).
async fn audit(
    w: &AdminStore,
    op: &OpSession,
    action: &str,
    portal: Option<i64>,
    detail: serde_json::Value,
    outcome: &str,
) -> Result<(), Response> {
    shared::db::audit::record(&w.pool, portal, &op.actor(), action, &detail, outcome)
        .await
        .map_err(db_error)
}

/// What the pages share: the sessions and the templates.
pub struct Pages {
    /// The operators' sessions.
    pub sessions: sessions::OpSessions,
    templates: minijinja::Environment<'static>,
}

impl Pages {
    /// Pages whose cookie is `Secure` and `__Host-` prefixed when `secure`.
    pub fn new(secure: bool) -> Self {
        Self {
            sessions: sessions::OpSessions::new(secure),
            templates: templates::environment(),
        }
    }
}
