//! OAuth over HTTP: the authorize page (pick an account, "Connect app"), the
//! token endpoint (2026-03 and the deprecated v1 alias), introspection.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use super::FakeHubSpot;
use super::errors::correlation_id;
use super::oauth::{GrantError, HubUser};
use crate::{html_escape, lock};

pub(crate) fn routes() -> Router<FakeHubSpot> {
    Router::new()
        .route(
            "/oauth/authorize",
            get(authorize_page).post(authorize_submit),
        )
        .route("/oauth/2026-03/token", post(token))
        .route("/oauth/v1/token", post(token))
        .route("/oauth/2026-03/token/introspect", post(introspect))
        .route("/oauth/v1/access-tokens/{token}", get(access_token_info))
        .route(
            "/oauth/v1/refresh-tokens/{token}",
            get(refresh_token_info).delete(revoke_refresh),
        )
}

fn form(raw: &[u8]) -> HashMap<String, String> {
    url::form_urlencoded::parse(raw).into_owned().collect()
}

fn grant_error(status: StatusCode, e: GrantError) -> Response {
    let body = json!({
        "status": e.status,
        "message": e.message,
        "correlationId": correlation_id(),
        "error": e.error,
        "error_description": e.message,
    });
    (status, Json(body)).into_response()
}

fn client_error(hub: &FakeHubSpot, f: &HashMap<String, String>) -> Option<Response> {
    let bad = |status: &'static str, msg: &str| {
        Some(grant_error(
            StatusCode::BAD_REQUEST,
            GrantError {
                status,
                error: "invalid_client",
                message: msg.to_string(),
            },
        ))
    };
    if f.get("client_id") != Some(&hub.state.client_id) {
        return bad("BAD_CLIENT_ID", "missing or unknown client id");
    }
    if f.get("client_secret") != Some(&hub.state.client_secret) {
        return bad("BAD_CLIENT_SECRET", "missing or invalid client secret");
    }
    None
}

async fn authorize_page(State(hub): State<FakeHubSpot>, RawQuery(raw): RawQuery) -> Response {
    let q = form(raw.unwrap_or_default().as_bytes());
    let get = |k: &str| q.get(k).cloned().unwrap_or_default();
    if get("client_id") != hub.state.client_id {
        let page = "<!doctype html><title>HubSpot sandbox</title><h1>Authorization failed</h1>\
                    <p>Unknown <code>client_id</code>.</p>";
        return (StatusCode::BAD_REQUEST, Html(page)).into_response();
    }
    let portals = hub.portal_ids();
    let options: String = portals
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let checked = if i == 0 { " checked" } else { "" };
            format!("<li><label><input type=radio name=portal_id value={p}{checked}> Sandbox account {p}</label></li>")
        })
        .collect();
    let hidden: String = [
        "client_id",
        "redirect_uri",
        "scope",
        "optional_scope",
        "state",
    ]
    .iter()
    .map(|k| {
        format!(
            "<input type=hidden name={k} value=\"{}\">",
            html_escape(&get(k))
        )
    })
    .collect();
    let page = format!(
        "<!doctype html><html><head><meta charset=utf-8><title>Choose an account | HubSpot sandbox</title></head>\
         <body><h1>Choose an account</h1><form method=post action=/oauth/authorize>{hidden}<ul>{options}</ul>\
         <p>The app is requesting: <code>{}</code></p>\
         <button type=submit name=action value=approve>Connect app</button> \
         <button type=submit name=action value=deny>Cancel</button></form></body></html>",
        html_escape(&get("scope"))
    );
    Html(page).into_response()
}

async fn authorize_submit(State(hub): State<FakeHubSpot>, body: axum::body::Bytes) -> Response {
    let f = form(&body);
    let get = |k: &str| f.get(k).cloned().unwrap_or_default();
    let Ok(mut redirect) = url::Url::parse(&get("redirect_uri")) else {
        return (
            StatusCode::BAD_REQUEST,
            Html("<h1>Invalid redirect_uri</h1>"),
        )
            .into_response();
    };
    if get("client_id") != hub.state.client_id {
        return (StatusCode::BAD_REQUEST, Html("<h1>Unknown client_id</h1>")).into_response();
    }
    if get("action") == "deny" {
        redirect
            .query_pairs_mut()
            .append_pair("error", "access_denied")
            .append_pair("state", &get("state"));
        return Redirect::to(redirect.as_str()).into_response();
    }
    let scopes: Vec<String> = [get("scope"), get("optional_scope")]
        .iter()
        .flat_map(|s| {
            s.split([' ', '+', ','])
                .filter(|x| !x.is_empty())
                .map(String::from)
                .collect::<Vec<_>>()
        })
        .collect();
    let portal: u64 = get("portal_id").parse().unwrap_or(0);
    let Ok(code) = hub.authorize_scopes(portal, HubUser::default(), &get("redirect_uri"), scopes)
    else {
        return (StatusCode::BAD_REQUEST, Html("<h1>Unknown account</h1>")).into_response();
    };
    redirect
        .query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", &get("state"));
    Redirect::to(redirect.as_str()).into_response()
}

async fn token(State(hub): State<FakeHubSpot>, body: axum::body::Bytes) -> Response {
    let f = form(&body);
    if let Some(resp) = client_error(&hub, &f) {
        return resp;
    }
    let ttl = *lock(&hub.state.access_token_ttl);
    let (latency, rotate) = {
        let faults = lock(&hub.state.token_faults);
        (faults.latency, faults.rotate)
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let get = |k: &str| f.get(k).map(String::as_str).unwrap_or_default();
    let issued = {
        let mut oauth = lock(&hub.state.oauth);
        match get("grant_type") {
            "authorization_code" => oauth.exchange_code(get("code"), get("redirect_uri"), ttl),
            "refresh_token" => {
                let r = oauth.refresh(get("refresh_token"), ttl, rotate);
                if r.is_ok() {
                    lock(&hub.state.token_faults).refreshes += 1;
                }
                r
            }
            other => Err(GrantError {
                status: "BAD_GRANT_TYPE",
                error: "unsupported_grant_type",
                message: format!("unsupported grant_type: {other}"),
            }),
        }
    };
    match issued {
        Ok(t) => {
            let mut body = json!({
                "token_type": "bearer",
                "refresh_token": t.refresh_token,
                "access_token": t.access_token,
                "expires_in": t.expires_in,
            });
            if hub.state.token_hub_id.load(Ordering::Relaxed) {
                body["hub_id"] = json!(t.portal);
                body["scopes"] = json!(t.scopes);
            }
            ([(header::CACHE_CONTROL, "no-store")], Json(body)).into_response()
        }
        Err(e) => grant_error(StatusCode::BAD_REQUEST, e),
    }
}

fn app_id(hub: &FakeHubSpot) -> u64 {
    hub.state.webhooks.app_id()
}

async fn introspect(State(hub): State<FakeHubSpot>, body: axum::body::Bytes) -> Response {
    let f = form(&body);
    if let Some(resp) = client_error(&hub, &f) {
        return resp;
    }
    let token = f.get("token").cloned().unwrap_or_default();
    let info = lock(&hub.state.oauth).introspect(&token);
    match info {
        Some(i) => Json(json!({
            "active": true,
            "token_type": i.token_type,
            "client_id": hub.state.client_id,
            "hub_id": i.portal,
            "app_id": app_id(&hub),
            "scopes": i.scopes,
            "expires_in": i.expires_in,
            "user_id": i.user.id,
            "user": i.user.email,
        }))
        .into_response(),
        None => Json(json!({"active": false})).into_response(),
    }
}

/// `GET /oauth/v1/access-tokens/{token}`: HubSpot's legacy token metadata.
async fn access_token_info(hub: State<FakeHubSpot>, token: Path<String>) -> Response {
    token_info(hub, token, "access_token").await
}

/// `GET /oauth/v1/refresh-tokens/{token}`.
async fn refresh_token_info(hub: State<FakeHubSpot>, token: Path<String>) -> Response {
    token_info(hub, token, "refresh_token").await
}

/// A token's metadata, as HubSpot's v1 endpoints answer for its kind
/// (`access_token` or `refresh_token`); 404 for a token of the other kind.
async fn token_info(
    State(hub): State<FakeHubSpot>,
    Path(token): Path<String>,
    kind: &str,
) -> Response {
    let Some(i) = lock(&hub.state.oauth)
        .introspect(&token)
        .filter(|i| i.token_type == kind)
    else {
        return not_found_token();
    };
    let mut body = json!({
        "token": token,
        "user": i.user.email,
        "hub_domain": format!("sandbox-{}.example.com", i.portal),
        "scopes": i.scopes,
        "hub_id": i.portal,
        "user_id": i.user.id,
    });
    let extra = if kind == "access_token" {
        json!({"app_id": app_id(&hub), "expires_in": i.expires_in, "token_type": "access"})
    } else {
        json!({"client_id": hub.state.client_id, "token_type": "refresh"})
    };
    if let (Some(b), serde_json::Value::Object(e)) = (body.as_object_mut(), extra) {
        b.extend(e);
    }
    Json(body).into_response()
}

async fn revoke_refresh(State(hub): State<FakeHubSpot>, Path(token): Path<String>) -> Response {
    if lock(&hub.state.oauth).revoke_refresh(&token) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        not_found_token()
    }
}

fn not_found_token() -> Response {
    let e = GrantError {
        status: "NOT_FOUND",
        error: "invalid_token",
        message: "token not found".into(),
    };
    grant_error(StatusCode::NOT_FOUND, e)
}
