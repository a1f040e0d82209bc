//! Admin route handlers: thin over `shared::db` (dead letters, replay
//! requests, conversions, privacy) and the replay desk.

use axum::{
    Extension, Json,
    extract::{Query, State},
    http::StatusCode,
};
use serde::Deserialize;
use serde_json::{Value, json};
use shared::{
    broker::ReplayMode,
    db::{
        dead_letter_ops as ops,
        dead_letters::{self, DeadLetterId, ReasonClass},
        replays,
    },
};

use shared::http::ApiError;

use super::{AdminState, AdminStore, auth::Operator};
use crate::{
    extract::{ApiJson, ApiPath},
    replays::RequestError,
};

type Answer = Result<Json<Value>, ApiError>;

fn store(state: &AdminState) -> Result<&AdminStore, ApiError> {
    match &state.store {
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
    let w = store(&state)?;
    let rows = dead_letters::list(&w.pool, &q.to_filter()?)
        .await
        .map_err(db_error)?;
    Ok(Json(json!({ "dead_letters": rows })))
}

/// `GET /admin/api/dead-letters/{id}`.
pub async fn show(State(state): State<AdminState>, ApiPath(id): ApiPath<i64>) -> Answer {
    let w = store(&state)?;
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

fn request_error(e: RequestError) -> ApiError {
    match e {
        RequestError::Database(e) => db_error(e),
        RequestError::Broker(e) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "broker_unavailable",
            format!("the replay could not be queued: {e}"),
        ),
    }
}

/// Records a replay request and queues it: 202 and its id.
async fn request(
    w: &AdminStore,
    who: &str,
    ids: &[i64],
    mode: ReplayMode,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let id = w
        .replays
        .request(&w.pool, who, None, ids, mode)
        .await
        .map_err(request_error)?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "replay_id": id, "dead_letters": ids.len() })),
    ))
}

/// `POST /admin/api/dead-letters/{id}/replay` `{"dry_run":false,"as_sent":false,"force":false}`:
/// 202 `{"replay_id": ..}`; a worker replays it.
pub async fn replay_id(
    State(state): State<AdminState>,
    Extension(Operator(who)): Extension<Operator>,
    ApiPath(id): ApiPath<i64>,
    body: Option<Json<ReplayMode>>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let w = store(&state)?;
    let mode = body.map(|Json(m)| m).unwrap_or_default();
    request(w, &who, &[id], mode).await
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
/// every open dead letter matching the filter, in one request a worker
/// carries out at `CONNECTOR_REPLAY_RATE_PER_SEC`. 202 `{"replay_id": ..}`.
pub async fn replay_filter(
    State(state): State<AdminState>,
    Extension(Operator(who)): Extension<Operator>,
    ApiJson(body): ApiJson<BulkReplay>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let w = store(&state)?;
    let mut filter = body.filter.to_filter()?;
    filter.state = None;
    let ids: Vec<i64> = dead_letters::list(&w.pool, &filter)
        .await
        .map_err(db_error)?
        .into_iter()
        .map(|d| d.id.0)
        .collect();
    request(w, &who, &ids, body.mode).await
}

/// `GET /admin/api/replays/{id}`: a replay request, its status and results.
pub async fn replay_status(
    State(state): State<AdminState>,
    ApiPath(id): ApiPath<uuid::Uuid>,
) -> Answer {
    let w = store(&state)?;
    match replays::get(&w.pool, id).await.map_err(db_error)? {
        Some(r) => Ok(Json(json!(r))),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no replay request {id}"),
        )),
    }
}

/// Query of `GET /admin/api/replays`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ReplayParams {
    portal: Option<i64>,
    limit: Option<i64>,
}

/// `GET /admin/api/replays?portal=&limit=`: the latest replay requests.
pub async fn replays(State(state): State<AdminState>, Query(p): Query<ReplayParams>) -> Answer {
    let w = store(&state)?;
    let rows = replays::list(&w.pool, p.portal, p.limit.unwrap_or(50))
        .await
        .map_err(db_error)?;
    Ok(Json(json!({ "replays": rows })))
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
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<DiscardBody>,
) -> Answer {
    let w = store(&state)?;
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
    ApiJson(body): ApiJson<EraseBody>,
) -> Answer {
    let w = store(&state)?;
    if body.portal <= 0 || body.contact <= 0 {
        return Err(bad_request(
            "portal and contact must be HubSpot ids (positive integers)".into(),
        ));
    }
    let erased = shared::db::privacy::erase(
        &w.pool,
        &w.cipher,
        body.portal,
        body.contact,
        shared::db::privacy::Trigger::Request,
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
    object_id: Option<i64>,
    object_type: Option<String>,
}

/// `GET /admin/api/conversions?portal=&status=&limit=&object_type=&object_id=`:
/// conversions with their submission outcome (`status=rejected` for those
/// impact.com refused); `object_id` lists a record's, those recorded under
/// ids merged into it included (each says `merged_into`).
pub async fn conversions(
    State(state): State<AdminState>,
    Query(p): Query<ConversionParams>,
) -> Answer {
    use shared::db::outcomes::{LIST_STATUSES, ListFilter, list};
    let w = store(&state)?;
    if let Some(t) = p.object_type.as_deref()
        && domain::object_type::ObjectType::parse(t).is_none()
    {
        return Err(bad_request(format!(
            "object_type {t:?} is not one of contacts, companies, deals"
        )));
    }
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
            object_id: p.object_id,
            object_type: p.object_type,
        },
    )
    .await
    .map_err(db_error)?;
    Ok(Json(json!({ "conversions": rows })))
}
