//! Bulk replay from the dead-letter page: a dry run first (a replay
//! request the workers carry out without sending anything), its estimate
//! and progress, then the real replay of the same dead letters.

use axum::{
    Form, Json,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Redirect, Response},
};
use minijinja::{Value, context};
use serde_json::json;
use shared::{broker::ReplayMode, db::replays};
use uuid::Uuid;

use super::{
    AdminState, Fields, audit, checked, db_error,
    estimate::{Verdict, progress, verdict},
    operator, page_error, render, store,
    views::DlFilter,
};
use crate::replays::RequestError;

/// Most dead letters one bulk replay takes.
pub const MAX_BULK: i64 = 10_000;

fn request_error(e: RequestError) -> Response {
    match e {
        RequestError::Database(e) => db_error(e),
        RequestError::Broker(e) => page_error(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("The replay could not be queued for the workers: {e}. Try again."),
        ),
        RequestError::Unavailable { id, why } => {
            page_error(StatusCode::CONFLICT, &format!("Dead letter {id}: {why}"))
        }
    }
}

/// `POST /admin/dead-letters/estimate` (the filter fields, `csrf`): a dry
/// run of every open dead letter the filter matches; to its page.
pub async fn estimate(
    State(state): State<AdminState>,
    headers: HeaderMap,
    Form(f): Form<Fields>,
) -> Response {
    let op = match checked(&state, &headers, &f) {
        Ok(o) => o,
        Err(r) => return r,
    };
    let w = match store(&state) {
        Ok(w) => w,
        Err(r) => return r,
    };
    let shown = DlFilter::of(&f);
    let mut filter = match shown.to_filter(MAX_BULK) {
        Ok(f) => f,
        Err(e) => return page_error(StatusCode::BAD_REQUEST, &e),
    };
    filter.state = Some("open".into());
    let ids: Vec<i64> = match shared::db::dead_letters::list(&w.pool, &filter).await {
        Ok(rows) => rows.into_iter().map(|d| d.id.0).collect(),
        Err(e) => return db_error(e),
    };
    if ids.is_empty() {
        return page_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "No open dead letter matches this filter: nothing to replay.",
        );
    }
    let mode = ReplayMode {
        dry_run: true,
        ..ReplayMode::default()
    };
    let id = match w
        .replays
        .request(&w.pool, &op.actor(), None, &ids, mode)
        .await
    {
        Ok(id) => id,
        Err(e) => return request_error(e),
    };
    let detail = json!({
        "route": "POST /admin/dead-letters/estimate", "replay": id, "dry_run": true,
        "filter": shown.audited(), "dead_letters": shared::db::audit::id_list(ids.iter().map(|i| json!(i))),
    });
    if let Err(r) = audit(w, &op, "replay.request", filter.portal, detail, "queued").await {
        return r;
    }
    Redirect::to(&format!("/admin/replays/{id}")).into_response()
}

async fn load(state: &AdminState, id: &str) -> Result<replays::ReplayRequestRow, Response> {
    let w = store(state)?;
    let Ok(id) = id.parse::<Uuid>() else {
        return Err(page_error(StatusCode::NOT_FOUND, "no such replay"));
    };
    match replays::get(&w.pool, id).await {
        Ok(Some(r)) => Ok(r),
        Ok(None) => Err(page_error(StatusCode::NOT_FOUND, "no such replay")),
        Err(e) => Err(db_error(e)),
    }
}

/// `GET /admin/replays/{id}`: progress (refreshing itself until the
/// workers are done), the dry run's estimate and the button that replays.
pub async fn show(
    State(state): State<AdminState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let op = match operator(&state, &headers) {
        Ok(o) => o,
        Err(r) => return r,
    };
    let r = match load(&state, &id).await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let p = progress(&r);
    let sendable = sendable(&r).len();
    render(
        &state,
        Some(&op),
        "ops/replay.html",
        context! {
            replay => context! {
                id => r.id.to_string(),
                actor => r.actor,
                created => r.created_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
                dry_run => r.mode.dry_run,
                error => r.error,
            },
            progress => Value::from_serialize(&p),
            sendable => sendable,
            refresh => !p.finished,
        },
    )
}

/// `GET /admin/replays/{id}/progress`: the same progress as JSON.
pub async fn progress_json(
    State(state): State<AdminState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(r) = operator(&state, &headers) {
        return r;
    }
    match load(&state, &id).await {
        Ok(r) => Json(progress(&r)).into_response(),
        Err(resp) => resp,
    }
}

/// The dead letters of a dry run that would send a conversion.
fn sendable(r: &replays::ReplayRequestRow) -> Vec<i64> {
    r.results
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|rep| verdict(rep) == Verdict::WouldSend)
                .filter_map(|rep| rep["id"].as_i64())
                .collect()
        })
        .unwrap_or_default()
}

/// `POST /admin/replays/{id}/confirm` (`csrf`, `only_sendable`): replays
/// the dead letters of a finished dry run (those it said would be sent,
/// or all of them); to the new request's page.
pub async fn confirm(
    State(state): State<AdminState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<Fields>,
) -> Response {
    let op = match checked(&state, &headers, &f) {
        Ok(o) => o,
        Err(r) => return r,
    };
    let w = match store(&state) {
        Ok(w) => w,
        Err(r) => return r,
    };
    let dry = match load(&state, &id).await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    if !dry.mode.dry_run || dry.status != "done" {
        return page_error(
            StatusCode::CONFLICT,
            "Only a finished dry run can be confirmed: wait for its estimate.",
        );
    }
    let ids = if f.get("only_sendable").is_some_and(|v| v == "1") {
        sendable(&dry)
    } else {
        dry.dead_letter_ids.clone()
    };
    if ids.is_empty() {
        return page_error(StatusCode::UNPROCESSABLE_ENTITY, "Nothing to replay.");
    }
    let new = match w
        .replays
        .request(&w.pool, &op.actor(), None, &ids, ReplayMode::default())
        .await
    {
        Ok(id) => id,
        Err(e) => return request_error(e),
    };
    let detail = json!({
        "route": "POST /admin/replays/{id}/confirm", "replay": new, "estimate": dry.id,
        "dead_letters": shared::db::audit::id_list(ids.iter().map(|i| json!(i))),
    });
    if let Err(r) = audit(w, &op, "replay.request", dry.portal_id, detail, "queued").await {
        return r;
    }
    Redirect::to(&format!("/admin/replays/{new}")).into_response()
}
