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
mod replay;
pub mod sessions;
mod templates;

use std::collections::HashMap;

use axum::{
    Form, Router,
    extract::{FromRequest, Query, Request, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{Html, IntoResponse, Redirect, Response},
    routing::{get, post},
};
use minijinja::{Value, context};
use serde_json::json;
use shared::db::{dead_letter_ops, dead_letters};

use super::{AdminState, AdminStore};
use crate::operators::{self, Refusal};
use sessions::OpSession;

pub use estimate::{Progress, progress};

type Fields = HashMap<String, String>;

/// The pages' routes (their own guard: the session cookie).
pub fn routes() -> Router<AdminState> {
    Router::new()
        .route("/admin", get(|| async { Redirect::to("/admin/portals") }))
        .route("/admin/login", get(login_form).post(login))
        .route("/admin/logout", post(logout))
        .route("/admin/portals", get(portals))
        .route("/admin/dead-letters", get(dead_letters_page))
        .route("/admin/dead-letters/estimate", post(replay::estimate))
        .route("/admin/replays/{id}", get(replay::show))
        .route("/admin/replays/{id}/progress", get(replay::progress_json))
        .route("/admin/replays/{id}/confirm", post(replay::confirm))
        .route("/admin/audit", get(audit_log))
        .merge(crate::web::headers::routes())
        .layer(axum::extract::DefaultBodyLimit::max(64 * 1024))
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
/// must be this host.
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

/// `GET /admin/login`.
async fn login_form(State(state): State<AdminState>, headers: HeaderMap) -> Response {
    if state.pages.sessions.find(&headers).is_some() {
        return Redirect::to("/admin/portals").into_response();
    }
    render(&state, None, "ops/login.html", context! {})
}

/// `POST /admin/login` (`token`): a session for the token's operator.
/// Failures count towards the admin API's lockout.
async fn login(State(state): State<AdminState>, req: Request) -> Response {
    let auth = match &state.auth {
        Ok(a) => a.clone(),
        Err(why) => {
            return page_error(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("The operators' pages are off: {why}"),
            );
        }
    };
    let peer = operators::peer(&req);
    let origin_ok = same_origin(req.headers());
    let Ok(Form(f)) = Form::<Fields>::from_request(req, &()).await else {
        return page_error(StatusCode::BAD_REQUEST, "a form was expected");
    };
    if !origin_ok {
        return page_error(
            StatusCode::FORBIDDEN,
            "This form did not come from this page.",
        );
    }
    let token = f.get("token").map(|t| t.trim()).filter(|t| !t.is_empty());
    let name = match auth.check(peer, token) {
        Ok(name) => name.to_owned(),
        Err(refusal) => {
            let (status, message, retry) = match refusal {
                Refusal::Invalid => (
                    StatusCode::UNAUTHORIZED,
                    "That is not an operator token.".to_owned(),
                    None,
                ),
                Refusal::LockedOut { retry_after, .. } => {
                    let secs = retry_after.as_secs().max(1);
                    (
                        StatusCode::TOO_MANY_REQUESTS,
                        format!("Too many failed attempts: try again in {secs} s."),
                        Some(secs),
                    )
                }
            };
            let mut resp = render_status(
                &state,
                None,
                "ops/login.html",
                context! { errors => vec![message] },
                status,
            );
            if let Some(secs) = retry {
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            return resp;
        }
    };
    let set = state.pages.sessions.open(&name);
    if let Ok(w) = store(&state) {
        let actor = format!("admin:{name}");
        let detail = json!({ "route": "POST /admin/login" });
        if let Err(e) =
            shared::db::audit::record(&w.pool, None, &actor, "operator.login", &detail, "ok").await
        {
            tracing::warn!(error = %e, "operator login could not be audited; refused");
            return db_error(e);
        }
    }
    ([(header::SET_COOKIE, set)], Redirect::to("/admin/portals")).into_response()
}

/// `POST /admin/logout`.
async fn logout(
    State(state): State<AdminState>,
    headers: HeaderMap,
    Form(f): Form<Fields>,
) -> Response {
    if let Err(r) = checked(&state, &headers, &f) {
        return r;
    }
    let clear = state.pages.sessions.close(&headers);
    ([(header::SET_COOKIE, clear)], Redirect::to("/admin/login")).into_response()
}

/// `GET /admin/portals`: every portal with its health.
async fn portals(State(state): State<AdminState>, headers: HeaderMap) -> Response {
    let op = match operator(&state, &headers) {
        Ok(o) => o,
        Err(r) => return r,
    };
    let w = match store(&state) {
        Ok(w) => w,
        Err(r) => return r,
    };
    let rows = match data::portals(&w.pool).await {
        Ok(r) => r,
        Err(e) => return db_error(e),
    };
    render(
        &state,
        Some(&op),
        "ops/portals.html",
        context! { portals => Value::from_serialize(&rows) },
    )
}

/// The dead-letter filter of a query or a form.
#[derive(Debug, Default, Clone, serde::Serialize)]
struct DlFilter {
    portal: String,
    object_type: String,
    reason_class: String,
    state: String,
    text: String,
    since: String,
    until: String,
}

impl DlFilter {
    fn of(f: &Fields) -> Self {
        let get = |k: &str| f.get(k).map(|v| v.trim().to_owned()).unwrap_or_default();
        Self {
            portal: get("portal"),
            object_type: get("object_type"),
            reason_class: get("reason_class"),
            state: get("state"),
            text: get("text"),
            since: get("since"),
            until: get("until"),
        }
    }

    /// The store's filter; `Err`: what is wrong, for the page.
    fn to_filter(&self, limit: i64) -> Result<dead_letters::Filter, String> {
        let opt = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        let portal = match opt(&self.portal) {
            Some(p) => Some(
                p.parse::<i64>()
                    .map_err(|_| format!("portal {p:?} is not a number"))?,
            ),
            None => None,
        };
        let class = opt(&self.reason_class)
            .map(|c| c.parse::<dead_letters::ReasonClass>())
            .transpose()?;
        if let Some(t) = opt(&self.object_type)
            && domain::object_type::ObjectType::parse(&t).is_none()
        {
            return Err(format!(
                "object type {t:?} is not contacts, companies or deals"
            ));
        }
        dead_letter_ops::filter(
            None,
            portal,
            opt(&self.object_type),
            class,
            opt(&self.since).as_deref(),
            opt(&self.until).as_deref(),
            opt(&self.text),
            opt(&self.state),
            Some(limit),
        )
        .map_err(|e| e.to_string())
    }

    fn audited(&self) -> serde_json::Value {
        json!({
            "portal": self.portal, "object_type": self.object_type,
            "reason_class": self.reason_class, "state": self.state,
            "since": self.since, "until": self.until, "text": !self.text.is_empty(),
        })
    }
}

/// Rows shown on the dead-letter page.
const PAGE_ROWS: i64 = 200;

/// `GET /admin/dead-letters?portal=&object_type=&reason_class=&state=&text=&since=&until=`.
async fn dead_letters_page(
    State(state): State<AdminState>,
    headers: HeaderMap,
    Query(q): Query<Fields>,
) -> Response {
    let op = match operator(&state, &headers) {
        Ok(o) => o,
        Err(r) => return r,
    };
    let w = match store(&state) {
        Ok(w) => w,
        Err(r) => return r,
    };
    let shown = DlFilter::of(&q);
    let filter = match shown.to_filter(PAGE_ROWS + 1) {
        Ok(f) => f,
        Err(e) => {
            return render_status(
                &state,
                Some(&op),
                "ops/dead_letters.html",
                context! { filter => Value::from_serialize(&shown), errors => vec![e], letters => Vec::<()>::new() },
                StatusCode::BAD_REQUEST,
            );
        }
    };
    let mut rows = match dead_letters::list(&w.pool, &filter).await {
        Ok(r) => r,
        Err(e) => return db_error(e),
    };
    let more = rows.len() > PAGE_ROWS as usize;
    rows.truncate(PAGE_ROWS as usize);
    let portal = shared::db::audit::one_portal(filter.portal, rows.iter().map(|d| d.portal_id));
    let detail = json!({
        "route": "GET /admin/dead-letters",
        "filter": shown.audited(),
        "dead_letters": shared::db::audit::id_list(rows.iter().map(|d| json!(d.id))),
    });
    if let Err(r) = audit(w, &op, "dead_letter.list", portal, detail, "read").await {
        return r;
    }
    let open = rows.iter().filter(|d| d.is_open()).count();
    let letters: Vec<serde_json::Value> = rows
        .iter()
        .map(|d| {
            json!({
                "id": d.id, "portal_id": d.portal_id, "object_type": d.object_type,
                "object_id": d.object_id, "reason_class": d.reason_class, "reason": d.reason,
                "last_status": d.last_status, "last_error": d.last_error, "attempts": d.attempts,
                "state": d.state, "created_at": d.created_at.to_rfc3339(),
                "created": d.created_at.format("%Y-%m-%d %H:%M UTC").to_string(),
            })
        })
        .collect();
    render(
        &state,
        Some(&op),
        "ops/dead_letters.html",
        context! {
            filter => Value::from_serialize(&shown),
            letters => Value::from_serialize(&letters),
            open => open,
            more => more,
            limit => PAGE_ROWS,
        },
    )
}

/// `GET /admin/audit?actor=&action=&portal=&before=`: the audit log,
/// newest first, 100 rows a page.
async fn audit_log(
    State(state): State<AdminState>,
    headers: HeaderMap,
    Query(q): Query<Fields>,
) -> Response {
    let op = match operator(&state, &headers) {
        Ok(o) => o,
        Err(r) => return r,
    };
    let w = match store(&state) {
        Ok(w) => w,
        Err(r) => return r,
    };
    let get = |k: &str| {
        q.get(k)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let number = |k: &str| get(k).and_then(|v| v.parse::<i64>().ok());
    let f = data::AuditFilter {
        actor: get("actor"),
        action: get("action"),
        portal: number("portal"),
        before: number("before"),
        limit: 101,
    };
    let mut rows = match data::audit(&w.pool, &f).await {
        Ok(r) => r,
        Err(e) => return db_error(e),
    };
    let more = rows.len() > 100;
    rows.truncate(100);
    let next = more.then(|| rows.last().map(|r| r.id)).flatten();
    let shown: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            json!({
                "id": r.id, "at": r.at.to_rfc3339(),
                "when": r.at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
                "actor": r.actor, "action": r.action, "portal_id": r.portal_id,
                "outcome": r.outcome,
                "detail": r.detail.as_ref().map(|d| d.to_string()),
            })
        })
        .collect();
    render(
        &state,
        Some(&op),
        "ops/audit.html",
        context! {
            rows => Value::from_serialize(&shown),
            next => next,
            actor => get("actor").unwrap_or_default(),
            action => get("action").unwrap_or_default(),
            portal => get("portal").unwrap_or_default(),
        },
    )
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
