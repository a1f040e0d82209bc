//! The portals, dead-letter and audit-log pages.

use axum::{
    extract::{Query, State},
    http::{HeaderMap, StatusCode},
    response::Response,
};
use minijinja::{Value, context};
use serde_json::json;
use shared::db::{dead_letter_ops, dead_letters};

use super::{AdminState, Fields, audit, data, db_error, operator, render, render_status, store};

/// `GET /admin/portals`: every portal with its health.
pub(super) async fn portals(State(state): State<AdminState>, headers: HeaderMap) -> Response {
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
pub(super) struct DlFilter {
    portal: String,
    object_type: String,
    reason_class: String,
    state: String,
    text: String,
    since: String,
    until: String,
}

impl DlFilter {
    pub(super) fn of(f: &Fields) -> Self {
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
    pub(super) fn to_filter(&self, limit: i64) -> Result<dead_letters::Filter, String> {
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

    pub(super) fn audited(&self) -> serde_json::Value {
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
pub(super) async fn dead_letters_page(
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
pub(super) async fn audit_log(
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
