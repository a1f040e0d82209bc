//! Admin route handlers: thin over `worker::dlq` and `shared::db::dead_letters`.

use axum::{
    Extension, Json,
    extract::{Path, Query, State},
    http::StatusCode,
};
use serde::Deserialize;
use serde_json::{Value, json};
use shared::db::dead_letters::{self, DeadLetterId, ReasonClass};
use worker::{
    Worker,
    dlq::{
        ops,
        replay::{ReplayMode, replay_many, replay_one},
    },
};

use super::{AdminState, auth::Operator};
use crate::error::ApiError;

type Answer = Result<Json<Value>, ApiError>;

fn worker(state: &AdminState) -> Result<&Worker, ApiError> {
    match &state.worker {
        Some(Ok(w)) => Ok(w),
        Some(Err(why)) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            format!("the dead-letter store is not configured: {why}"),
        )),
        None => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            "the dead-letter store is not configured (CONNECTOR_DATABASE_URL)",
        )),
    }
}

fn db_error(e: sqlx::Error) -> ApiError {
    tracing::warn!(error = %e, "admin API: database error");
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "store_unavailable",
        "the dead-letter store is unreachable",
    )
}

fn bad_request(e: String) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_filter", e)
}

/// Filters, as query parameters or in a replay body.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct FilterParams {
    portal: Option<i64>,
    object_type: Option<String>,
    reason_class: Option<String>,
    since: Option<String>,
    until: Option<String>,
    text: Option<String>,
    state: Option<String>,
    limit: Option<i64>,
}

impl FilterParams {
    fn to_filter(&self) -> Result<dead_letters::Filter, ApiError> {
        let class = self
            .reason_class
            .as_deref()
            .map(str::parse::<ReasonClass>)
            .transpose()
            .map_err(bad_request)?;
        ops::filter(
            None,
            self.portal,
            self.object_type.clone(),
            class,
            self.since.as_deref(),
            self.until.as_deref(),
            self.text.clone(),
            self.state.clone(),
            self.limit,
        )
        .map_err(|e| bad_request(e.to_string()))
    }
}

/// `GET /admin/api/dead-letters?portal=&object_type=&reason_class=&since=&until=&text=&state=&limit=`.
pub async fn list(State(state): State<AdminState>, Query(q): Query<FilterParams>) -> Answer {
    let w = worker(&state)?;
    let rows = dead_letters::list(&w.pool, &q.to_filter()?)
        .await
        .map_err(db_error)?;
    Ok(Json(json!({ "dead_letters": rows })))
}

/// `GET /admin/api/dead-letters/{id}`.
pub async fn show(State(state): State<AdminState>, Path(id): Path<i64>) -> Answer {
    let w = worker(&state)?;
    match dead_letters::get(&w.pool, DeadLetterId(id))
        .await
        .map_err(db_error)?
    {
        Some(d) => Ok(Json(json!(d))),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no dead letter {id}"),
        )),
    }
}

/// `POST /admin/api/dead-letters/{id}/replay` `{"dry_run":false,"as_sent":false,"force":false}`.
pub async fn replay_id(
    State(state): State<AdminState>,
    Extension(Operator(who)): Extension<Operator>,
    Path(id): Path<i64>,
    body: Option<Json<ReplayMode>>,
) -> Answer {
    let w = worker(&state)?;
    let mode = body.map(|Json(m)| m).unwrap_or_default();
    let r = replay_one(w, DeadLetterId(id), mode, &who)
        .await
        .map_err(db_error)?;
    Ok(Json(json!(r)))
}

/// Body of a bulk replay: a filter and the mode.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct BulkReplay {
    #[serde(flatten)]
    filter: FilterParams,
    #[serde(flatten)]
    mode: ReplayMode,
}

/// `POST /admin/api/dead-letters/replay` `{"portal":1001,"reason_class":"permanent","dry_run":true}`:
/// every open dead letter matching the filter, at `CONNECTOR_REPLAY_RATE_PER_SEC`.
pub async fn replay_filter(
    State(state): State<AdminState>,
    Extension(Operator(who)): Extension<Operator>,
    Json(body): Json<BulkReplay>,
) -> Answer {
    let w = worker(&state)?;
    let mut filter = body.filter.to_filter()?;
    filter.state = None;
    let ids: Vec<DeadLetterId> = dead_letters::list(&w.pool, &filter)
        .await
        .map_err(db_error)?
        .into_iter()
        .map(|d| d.id)
        .collect();
    let reports = replay_many(w, &ids, body.mode, &who, state.replay_rate, |_| {})
        .await
        .map_err(db_error)?;
    let delivered = reports.iter().filter(|r| r.outcome.sent()).count();
    Ok(Json(
        json!({ "replayed": reports.len(), "delivered": delivered, "reports": reports }),
    ))
}

/// Body of a discard.
#[derive(Debug, Deserialize)]
pub struct DiscardBody {
    reason: String,
}

/// `POST /admin/api/dead-letters/{id}/discard` `{"reason":"test data"}`.
pub async fn discard(
    State(state): State<AdminState>,
    Extension(Operator(who)): Extension<Operator>,
    Path(id): Path<i64>,
    Json(body): Json<DiscardBody>,
) -> Answer {
    let w = worker(&state)?;
    if body.reason.trim().is_empty() {
        return Err(bad_request("a reason is required".into()));
    }
    match ops::discard(&w.pool, DeadLetterId(id), &who, &body.reason)
        .await
        .map_err(db_error)?
    {
        ops::Discarded::Discarded => Ok(Json(json!({ "id": id, "outcome": "discarded" }))),
        ops::Discarded::NotOpen => Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_open",
            format!("dead letter {id} is not open (or does not exist)"),
        )),
    }
}

/// Body of `POST /admin/api/privacy/erase`.
#[derive(Debug, Deserialize)]
pub struct EraseBody {
    portal: i64,
    contact: i64,
}

/// `POST /admin/api/privacy/erase` `{"portal","contact"}`: erases what is
/// held about the contact (idempotent), as `worker privacy erase` does.
pub async fn privacy_erase(
    State(state): State<AdminState>,
    Extension(Operator(who)): Extension<Operator>,
    Json(body): Json<EraseBody>,
) -> Answer {
    let w = worker(&state)?;
    if body.portal <= 0 || body.contact <= 0 {
        return Err(bad_request(
            "portal and contact must be HubSpot ids (positive integers)".into(),
        ));
    }
    let erased = worker::privacy::erase(
        &w.pool,
        &w.cipher,
        body.portal,
        body.contact,
        worker::privacy::Trigger::Request,
        &who,
    )
    .await
    .map_err(db_error)?;
    Ok(Json(json!({
        "portal": body.portal,
        "contact": body.contact,
        "outcome": "erased",
        "erased": erased,
    })))
}

/// Query of `GET /admin/api/conversions`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ConversionParams {
    portal: Option<i64>,
    status: Option<String>,
    limit: Option<i64>,
}

/// `GET /admin/api/conversions?portal=&status=&limit=`: conversions with
/// their submission outcome (`status=rejected` for those impact.com refused).
pub async fn conversions(
    State(state): State<AdminState>,
    Query(p): Query<ConversionParams>,
) -> Answer {
    use shared::db::outcomes::{LIST_STATUSES, ListFilter, list};
    let w = worker(&state)?;
    if let Some(s) = p.status.as_deref()
        && !LIST_STATUSES.contains(&s)
    {
        return Err(bad_request(format!(
            "status {s:?} is not one of {}",
            LIST_STATUSES.join(", ")
        )));
    }
    let rows = list(
        &w.pool,
        &ListFilter {
            portal: p.portal,
            status: p.status,
            limit: p.limit.unwrap_or(100).clamp(1, 1000),
        },
    )
    .await
    .map_err(db_error)?;
    Ok(Json(json!({ "conversions": rows })))
}
