//! The dead-letter routes: list and show (audited reads), replay (a
//! request a worker carries out; one dead letter is reserved at once, so a
//! second operator gets 409) and discard (refused while a replay holds the
//! dead letter).

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
        dead_letter_leases::Unavailable,
        dead_letter_ops as ops,
        dead_letters::{self, DeadLetterId, ReasonClass},
    },
    http::ApiError,
};

use super::{
    AdminState, AdminStore, audit,
    auth::Operator,
    handlers::{Answer, bad_request, db_error, store},
};
use crate::{
    extract::{ApiJson, ApiPath},
    replays::RequestError,
};

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

    /// The filter as audited: the free text only as present or not (it
    /// may be a person's e-mail address).
    fn audited(&self) -> Value {
        json!({
            "portal": self.portal, "object_type": self.object_type,
            "reason_class": self.reason_class, "since": self.since, "until": self.until,
            "state": self.state, "limit": self.limit, "text": self.text.is_some(),
        })
    }
}

/// `GET /admin/api/dead-letters?portal=&object_type=&reason_class=&since=&until=&text=&state=&limit=`:
/// by default the unresolved ones (`open` and `replaying`), each with its state.
pub async fn list(
    State(state): State<AdminState>,
    Extension(Operator(who)): Extension<Operator>,
    Query(q): Query<FilterParams>,
) -> Answer {
    let w = store(&state)?;
    let rows = dead_letters::list(&w.pool, &q.to_filter()?)
        .await
        .map_err(db_error)?;
    let portal = audit::one_portal(q.portal, rows.iter().map(|d| d.portal_id));
    let detail = json!({
        "filter": q.audited(),
        "dead_letters": audit::ids(rows.iter().map(|d| json!(d.id))),
    });
    let route = "GET /admin/api/dead-letters";
    audit::read(w, &who, "dead_letter.list", route, portal, detail).await?;
    Ok(Json(json!({ "dead_letters": rows })))
}

/// `GET /admin/api/dead-letters/{id}`.
pub async fn show(
    State(state): State<AdminState>,
    Extension(Operator(who)): Extension<Operator>,
    ApiPath(id): ApiPath<i64>,
) -> Answer {
    let w = store(&state)?;
    let Some(d) = dead_letters::get(&w.pool, DeadLetterId(id))
        .await
        .map_err(db_error)?
    else {
        return Err(not_found(id));
    };
    let route = "GET /admin/api/dead-letters/{id}";
    let detail = json!({ "dead_letter": id });
    audit::read(w, &who, "dead_letter.show", route, d.portal_id, detail).await?;
    Ok(Json(json!(d)))
}

fn not_found(id: i64) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no dead letter {id}"),
    )
}

/// The answer to a dead letter that cannot be replayed or discarded now.
fn unavailable(id: i64, why: Unavailable) -> ApiError {
    let (status, code) = match &why {
        Unavailable::NotFound => return not_found(id),
        Unavailable::Replaying { .. } => (StatusCode::CONFLICT, "already_replaying"),
        Unavailable::Closed { .. } => (StatusCode::CONFLICT, "not_open"),
    };
    ApiError::new(status, code, format!("dead letter {id}: {why}"))
}

fn request_error(e: RequestError) -> ApiError {
    match e {
        RequestError::Database(e) => db_error(e),
        RequestError::Broker(e) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "broker_unavailable",
            format!("the replay could not be queued: {e}"),
        ),
        RequestError::Unavailable { id, why } => unavailable(id, why),
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
/// 202 `{"replay_id": ..}`; a worker replays it. 409 `already_replaying`
/// while a replay holds it, 409 `not_open` once replayed or discarded.
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
    filter.state = Some("open".into());
    let ids: Vec<i64> = dead_letters::list(&w.pool, &filter)
        .await
        .map_err(db_error)?
        .into_iter()
        .map(|d| d.id.0)
        .collect();
    request(w, &who, &ids, body.mode).await
}

/// Body of a discard.
#[derive(Debug, Deserialize)]
pub struct DiscardBody {
    reason: String,
}

/// `POST /admin/api/dead-letters/{id}/discard` `{"reason":"test data"}`:
/// 409 `already_replaying` while a replay holds it (its outcome is never
/// overwritten), 409 `not_open` once replayed or discarded, 404 when unknown.
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
    let outcome = ops::discard(&w.pool, DeadLetterId(id), &who, &body.reason)
        .await
        .map_err(db_error)?;
    let why = match outcome {
        ops::Discarded::Discarded => {
            return Ok(Json(json!({ "id": id, "outcome": "discarded" })));
        }
        ops::Discarded::NotFound => Unavailable::NotFound,
        ops::Discarded::NotOpen { state } => Unavailable::Closed { state },
        ops::Discarded::Replaying { holder, until } => Unavailable::Replaying { holder, until },
    };
    Err(unavailable(id, why))
}
