//! Admin route handlers: thin over `shared::db` (replay requests,
//! conversions, privacy) and what the dead-letter routes share
//! ([`super::dead_letters`]). Every read of personal data is audited
//! ([`super::audit`]).

use axum::{
    Extension, Json,
    extract::{Query, State},
    http::StatusCode,
};
use serde::Deserialize;
use serde_json::{Value, json};
use shared::db::replays;

use shared::http::ApiError;

use super::{AdminState, AdminStore, audit, auth::Operator};
use crate::{extract::ApiJson, extract::ApiPath};

/// A JSON answer or an error.
pub(super) type Answer = Result<Json<Value>, ApiError>;

/// The store, or 503 saying why it is unavailable.
pub(super) fn store(state: &AdminState) -> Result<&AdminStore, ApiError> {
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

/// 503 for a database error (logged, never shown).
pub(super) fn db_error(e: sqlx::Error) -> ApiError {
    tracing::warn!(error = %e, "admin API: database error");
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "store_unavailable",
        "the dead-letter store is unreachable",
    )
}

/// 400 `invalid_filter`.
pub(super) fn bad_request(e: String) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_filter", e)
}

/// `GET /admin/api/replays/{id}`: a replay request, its status and results.
pub async fn replay_status(
    State(state): State<AdminState>,
    Extension(Operator(who)): Extension<Operator>,
    ApiPath(id): ApiPath<uuid::Uuid>,
) -> Answer {
    let w = store(&state)?;
    let Some(r) = replays::get(&w.pool, id).await.map_err(db_error)? else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no replay request {id}"),
        ));
    };
    let detail = json!({ "replay": id, "dead_letters": r.dead_letter_ids });
    let route = "GET /admin/api/replays/{id}";
    audit::read(w, &who, "replay.show", route, r.portal_id, detail).await?;
    Ok(Json(json!(r)))
}

/// Query of `GET /admin/api/replays`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ReplayParams {
    portal: Option<i64>,
    limit: Option<i64>,
}

/// `GET /admin/api/replays?portal=&limit=`: the latest replay requests.
pub async fn replays(
    State(state): State<AdminState>,
    Extension(Operator(who)): Extension<Operator>,
    Query(p): Query<ReplayParams>,
) -> Answer {
    let w = store(&state)?;
    let rows = replays::list(&w.pool, p.portal, p.limit.unwrap_or(50))
        .await
        .map_err(db_error)?;
    let portal = audit::one_portal(p.portal, rows.iter().map(|r| r.portal_id));
    let detail = json!({
        "filter": { "portal": p.portal, "limit": p.limit },
        "replays": audit::ids(rows.iter().map(|r| json!(r.id))),
    });
    audit::read(
        w,
        &who,
        "replay.list",
        "GET /admin/api/replays",
        portal,
        detail,
    )
    .await?;
    Ok(Json(json!({ "replays": rows })))
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
    Extension(Operator(who)): Extension<Operator>,
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
    let filter = ListFilter {
        portal: p.portal,
        status: p.status,
        limit: p.limit.unwrap_or(100).clamp(1, 1000),
        object_id: p.object_id,
        object_type: p.object_type,
    };
    let rows = list(&w.pool, &filter).await.map_err(db_error)?;
    let portal = audit::one_portal(p.portal, rows.iter().map(|r| Some(r.portal_id)));
    let detail = json!({
        "filter": {
            "portal": filter.portal, "status": filter.status, "limit": filter.limit,
            "object_type": filter.object_type, "object_id": filter.object_id,
        },
        "conversions": audit::ids(rows.iter().map(|r| json!(r.id))),
    });
    let route = "GET /admin/api/conversions";
    audit::read(w, &who, "conversion.list", route, portal, detail).await?;
    Ok(Json(json!({ "conversions": rows })))
}
