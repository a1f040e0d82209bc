//! The website's JSON API (`/api/v1/...`): the same operations as the pages
//! ([`crate::web::ops`]), documented by `GET /api/v1/openapi.json`.
//!
//! Authentication: the website's session cookie (only its own portal;
//! changes need the `X-CSRF-Token` header, whose value `GET /api/v1/session`
//! returns), or `Authorization: Bearer <operator token>` (every portal;
//! failed attempts are limited as on the admin API: [`guard`]).
//!
//! Concurrent edits: `GET /api/v1/portals/{id}` answers the configuration's
//! `version` (also as `ETag: "N"`); a `PUT` with `If-Match: "N"` is refused
//! with 409 `stale_version` when another change came first.

// Guards return the early answer (login redirect, 403, 503) as `Err(Response)`:
// one per request, so its size does not matter.
#![allow(clippy::result_large_err)]

use std::{collections::BTreeMap, sync::Arc};

use axum::{
    Json, Router,
    extract::{Query, Request, State},
    http::{HeaderMap, Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
    routing::{get, post, put},
};
use domain::{events::PortalId, object_type::ObjectType, portal::MappingRow, triggers::TriggerSet};
use serde::Deserialize;
use serde_json::json;

use crate::extract::{ApiJson, ApiPath};

use crate::{
    AppState,
    web::{
        Website,
        ops::{self, OpError},
        session::{self, Principal},
    },
};

/// The OpenAPI description of this API.
pub const OPENAPI: &str = include_str!("openapi.json");

/// The API's routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/session", get(session_info))
        .route("/api/v1/portals", get(list))
        .route("/api/v1/portals/{portal}", get(show).delete(delete))
        .route("/api/v1/portals/{portal}/settings", put(settings))
        .route("/api/v1/portals/{portal}/triggers", put(triggers))
        .route("/api/v1/portals/{portal}/mappings", put(mappings))
        .route("/api/v1/portals/{portal}/adjustments", put(adjustments))
        .route(
            "/api/v1/portals/{portal}/webhook-secret",
            put(set_webhook_secret).delete(remove_webhook_secret),
        )
        .route(
            "/api/v1/portals/{portal}/properties/{object_type}",
            get(properties),
        )
        .route("/api/v1/portals/{portal}/preview", post(preview))
        .route("/api/v1/portals/{portal}/activity", get(activity))
        .route(
            "/api/v1/portals/{portal}/dead-letters/{id}/replay",
            post(replay),
        )
        .route("/api/v1/portals/{portal}/replays/{id}", get(replay_status))
        // Forms and JSON bodies are small; webhooks keep their own limit.
        .layer(axum::extract::DefaultBodyLimit::max(256 * 1024))
}

fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (
        status,
        Json(json!({ "error": code, "message": message.into() })),
    )
        .into_response()
}

fn op_error(e: OpError) -> Response {
    let details = match &e {
        OpError::Invalid(v) => v.clone(),
        _ => vec![],
    };
    let mut body = json!({ "error": e.code(), "message": e.to_string(), "details": details });
    if let Some(id) = e.reference() {
        body["correlation_id"] = json!(id);
    }
    (e.status(), Json(body)).into_response()
}

/// Counts failed operator-token attempts on the API as the admin API does
/// (per client and globally; locked out: 429 with `Retry-After`, the token
/// not even looked at). Requests without `Authorization` pass untouched.
pub async fn guard(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if req.headers().contains_key(header::AUTHORIZATION)
        && let Ok(site) = &state.website
        && let Some(auth) = &site.operators
        && let Err(refusal) = auth.check(
            crate::operators::peer(&req),
            crate::operators::bearer(req.headers()),
        )
    {
        return crate::operators::refusal_response(refusal, "unauthorized");
    }
    next.run(req).await
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

/// Who is calling; for a cookie session on a non-GET request the CSRF
/// header must match.
async fn principal(
    state: &AppState,
    method: &Method,
    headers: &HeaderMap,
) -> Result<(Arc<Website>, Principal), Response> {
    let site = state.website.clone().map_err(|reason| {
        shared::http::ApiError::internal(
            StatusCode::SERVICE_UNAVAILABLE,
            "website_unavailable",
            "the connector website is not available right now",
            reason,
        )
        .into_response()
    })?;
    if headers.contains_key(header::AUTHORIZATION) {
        // Failures were counted (and lockouts answered) by [`guard`].
        let token = crate::operators::bearer(headers).unwrap_or_default();
        if let Some(name) = ops::operator_name(&site, token) {
            return Ok((site, Principal::Operator { name }));
        }
        return Err(error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "invalid operator token",
        ));
    }
    let Some(p) = site.session(headers).await.map_err(op_error)? else {
        return Err(error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "log in through HubSpot, or send the operator token",
        ));
    };
    if let Principal::Portal { csrf, .. } = &p
        && method != Method::GET
    {
        let given = headers
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if !session::same(csrf, given) {
            return Err(error(
                StatusCode::FORBIDDEN,
                "csrf_failed",
                "missing or wrong X-CSRF-Token",
            ));
        }
    }
    Ok((site, p))
}

/// As [`principal`], and the caller may see `portal`.
async fn access(
    state: &AppState,
    method: &Method,
    headers: &HeaderMap,
    portal: u64,
) -> Result<(Arc<Website>, PortalId, String), Response> {
    let (site, p) = principal(state, method, headers).await?;
    let portal = PortalId(portal);
    if !p.may_see(portal) {
        return Err(op_error(OpError::Forbidden(portal)));
    }
    let actor = match p {
        Principal::Operator { name } => format!("api:operator:{name}"),
        Principal::Portal { user, .. } => user.actor("api", portal),
    };
    Ok((site, portal, actor))
}

macro_rules! access_or_return {
    ($state:expr, $method:expr, $headers:expr, $portal:expr) => {
        match access(&$state, &$method, &$headers, $portal).await {
            Ok(x) => x,
            Err(r) => return r,
        }
    };
}

/// The version a `PUT` is based on: `If-Match: "N"` (`None`: no
/// `If-Match`, or `*`).
fn if_match(headers: &HeaderMap) -> Result<Option<i64>, Response> {
    let Some(v) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let text = v.to_str().unwrap_or_default().trim();
    if text == "*" {
        return Ok(None);
    }
    let bare = text.trim_start_matches("W/").trim_matches('"');
    bare.parse::<i64>().map(Some).map_err(|_| {
        error(
            StatusCode::BAD_REQUEST,
            "invalid_if_match",
            format!(
                "If-Match must be the ETag of GET /api/v1/portals/{{id}} (e.g. \"3\"), not {text:?}"
            ),
        )
    })
}

macro_rules! edit_or_return {
    ($actor:expr, $headers:expr) => {
        match if_match(&$headers) {
            Ok(version) => ops::Edit {
                actor: &$actor,
                version,
            },
            Err(r) => return r,
        }
    };
}

fn reply<T: serde::Serialize>(r: Result<T, OpError>) -> Response {
    match r {
        Ok(v) => Json(v).into_response(),
        Err(e) => op_error(e),
    }
}

fn saved(r: Result<Vec<String>, OpError>) -> Response {
    reply(r.map(|warnings| json!({ "status": "saved", "warnings": warnings })))
}

async fn session_info(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    match principal(&state, &method, &headers).await {
        Ok((_, Principal::Operator { name })) => {
            Json(json!({ "operator": true, "name": name })).into_response()
        }
        Ok((_, Principal::Portal { portal, csrf, .. })) => {
            Json(json!({ "operator": false, "portal_id": portal.0, "csrf_token": csrf }))
                .into_response()
        }
        Err(r) => r,
    }
}

async fn list(State(state): State<AppState>, method: Method, headers: HeaderMap) -> Response {
    let (site, p) = match principal(&state, &method, &headers).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    reply(ops::list(&site).await.map(|all| {
        all.into_iter()
            .filter(|s| p.may_see(PortalId(u64::try_from(s.portal_id).unwrap_or(0))))
            .collect::<Vec<_>>()
    }))
}

async fn show(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    ApiPath(portal): ApiPath<u64>,
) -> Response {
    let (site, portal, _) = access_or_return!(state, method, headers, portal);
    match ops::view(&site, portal).await {
        Ok(v) => ([(header::ETAG, format!("\"{}\"", v.version))], Json(v)).into_response(),
        Err(e) => op_error(e),
    }
}

async fn settings(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    ApiPath(portal): ApiPath<u64>,
    ApiJson(input): ApiJson<ops::SettingsInput>,
) -> Response {
    let (site, portal, actor) = access_or_return!(state, method, headers, portal);
    let edit = edit_or_return!(actor, headers);
    saved(ops::save_settings(&site, portal, input, edit).await)
}

async fn triggers(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    ApiPath(portal): ApiPath<u64>,
    ApiJson(input): ApiJson<TriggerSet>,
) -> Response {
    let (site, portal, actor) = access_or_return!(state, method, headers, portal);
    let edit = edit_or_return!(actor, headers);
    saved(ops::save_triggers(&site, portal, input, edit).await)
}

async fn mappings(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    ApiPath(portal): ApiPath<u64>,
    ApiJson(input): ApiJson<BTreeMap<ObjectType, Vec<MappingRow>>>,
) -> Response {
    let (site, portal, actor) = access_or_return!(state, method, headers, portal);
    let edit = edit_or_return!(actor, headers);
    saved(ops::save_mappings(&site, portal, input, edit).await)
}

async fn adjustments(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    ApiPath(portal): ApiPath<u64>,
    ApiJson(input): ApiJson<domain::adjustments::AdjustmentSet>,
) -> Response {
    let (site, portal, actor) = access_or_return!(state, method, headers, portal);
    let edit = edit_or_return!(actor, headers);
    saved(ops::save_adjustments(&site, portal, input, edit).await)
}

async fn set_webhook_secret(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    ApiPath(portal): ApiPath<u64>,
    ApiJson(input): ApiJson<ops::WebhookSecretInput>,
) -> Response {
    let (site, portal, actor) = access_or_return!(state, method, headers, portal);
    reply(
        ops::set_webhook_secret(&site, portal, Some(input.webhook_secret), &actor)
            .await
            .map(|()| json!({ "status": "saved", "webhook_secret_set": true })),
    )
}

async fn remove_webhook_secret(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    ApiPath(portal): ApiPath<u64>,
) -> Response {
    let (site, portal, actor) = access_or_return!(state, method, headers, portal);
    reply(
        ops::set_webhook_secret(&site, portal, None, &actor)
            .await
            .map(|()| json!({ "status": "removed", "webhook_secret_set": false })),
    )
}

#[derive(Deserialize)]
struct Refresh {
    #[serde(default)]
    refresh: bool,
}

async fn properties(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    ApiPath((portal, ty)): ApiPath<(u64, String)>,
    Query(q): Query<Refresh>,
) -> Response {
    let (site, portal, _) = access_or_return!(state, method, headers, portal);
    let Some(ty) = ObjectType::parse(&ty) else {
        return op_error(OpError::Invalid(vec![format!(
            "unknown object type {ty:?}"
        )]));
    };
    reply(ops::properties(&site, portal, ty, q.refresh).await)
}

#[derive(Deserialize)]
struct PreviewInput {
    object_type: ObjectType,
    object_id: u64,
}

async fn preview(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    ApiPath(portal): ApiPath<u64>,
    ApiJson(input): ApiJson<PreviewInput>,
) -> Response {
    let (site, portal, _) = access_or_return!(state, method, headers, portal);
    reply(crate::web::preview_object(&site, portal, input.object_type, input.object_id).await)
}

async fn activity(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    ApiPath(portal): ApiPath<u64>,
) -> Response {
    let (site, portal, _) = access_or_return!(state, method, headers, portal);
    reply(ops::activity(&site, portal).await)
}

async fn replay(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    ApiPath((portal, id)): ApiPath<(u64, i64)>,
) -> Response {
    let (site, portal, actor) = access_or_return!(state, method, headers, portal);
    match ops::replay(&site, portal, id, &actor).await {
        Ok(replay_id) => (
            StatusCode::ACCEPTED,
            Json(json!({ "status": "requested", "replay_id": replay_id })),
        )
            .into_response(),
        Err(e) => op_error(e),
    }
}

async fn replay_status(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    ApiPath((portal, id)): ApiPath<(u64, uuid::Uuid)>,
) -> Response {
    let (site, portal, _) = access_or_return!(state, method, headers, portal);
    reply(ops::replay_request(&site, portal, id).await)
}

async fn delete(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    ApiPath(portal): ApiPath<u64>,
) -> Response {
    let (site, portal, actor) = access_or_return!(state, method, headers, portal);
    reply(
        ops::delete(&site, portal, &actor)
            .await
            .map(|()| json!({ "status": "deleted" })),
    )
}
