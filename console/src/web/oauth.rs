//! The install flow: `/oauth/start` sends the browser to HubSpot's authorize
//! page with a random `state` (also kept in an HttpOnly cookie); HubSpot
//! sends it back to `/oauth/callback?code=..&state=..`; the state is checked,
//! the code exchanged (`POST /oauth/2026-03/token`), the portal id learnt by
//! introspection, the tokens stored encrypted, and a session opened. A
//! reinstall after an uninstall finds the old configuration and resumes it;
//! a login never resumes a portal an operator paused, nor moves a
//! private-app portal to OAuth (`shared::db::portals::store_oauth_tokens`).

use std::collections::HashMap;

use axum::{
    extract::{Query, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
};
use domain::{
    events::PortalId,
    portal::{HubSpotAuthKind, PortalStatus},
};
use shared::db;

use super::{
    pages::{page_error, site},
    session::{self, SESSION_COOKIE, STATE_COOKIE},
};
use crate::AppState;

fn with_cookies(mut resp: Response, cookies: &[String]) -> Response {
    for c in cookies {
        if let Ok(v) = HeaderValue::from_str(c) {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    resp
}

/// `GET /oauth/start`: to HubSpot's authorize page.
pub async fn start(State(state): State<AppState>) -> Response {
    let site = match site(&state) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let nonce = session::random_token();
    let Ok(mut url) = url::Url::parse(&site.authorize_url) else {
        return page_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "CONNECTOR_HUBSPOT_AUTHORIZE_URL is not a URL",
        );
    };
    url.query_pairs_mut()
        .append_pair("client_id", &site.app.client_id)
        .append_pair("redirect_uri", &site.redirect_uri)
        .append_pair("scope", super::SCOPES)
        .append_pair("state", &nonce);
    with_cookies(
        Redirect::to(url.as_str()).into_response(),
        &[session::set_cookie(
            STATE_COOKIE,
            &nonce,
            600,
            site.secure_cookies,
        )],
    )
}

/// `GET /oauth/callback`: HubSpot's answer.
pub async fn callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let site = match site(&state) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let expected = session::cookie(&headers, STATE_COOKIE).unwrap_or_default();
    let given = q.get("state").map(String::as_str).unwrap_or_default();
    if expected.is_empty() || !session::same(expected, given) {
        return page_error(
            StatusCode::BAD_REQUEST,
            "The login could not be verified (state mismatch or expired). Start again from the login page.",
        );
    }
    if let Some(e) = q.get("error") {
        return page_error(
            StatusCode::BAD_REQUEST,
            &format!("HubSpot did not authorize the app ({e}). Start again from the login page."),
        );
    }
    let Some(code) = q.get("code") else {
        return page_error(
            StatusCode::BAD_REQUEST,
            "HubSpot sent no authorization code.",
        );
    };
    let grant = match site
        .hubspot
        .exchange_code(&site.app, code, &site.redirect_uri)
        .await
    {
        Ok(g) => g,
        Err(e) => {
            tracing::warn!(error = %e, "OAuth code exchange failed");
            return page_error(
                StatusCode::BAD_GATEWAY,
                &format!("HubSpot refused the authorization code: {e}"),
            );
        }
    };
    let portal = match site
        .hubspot
        .introspect(&site.app, &grant.access_token)
        .await
    {
        Ok(Some(p)) => PortalId(p),
        Ok(None) => {
            return page_error(
                StatusCode::BAD_GATEWAY,
                "HubSpot says the new token is not active.",
            );
        }
        Err(e) => {
            return page_error(
                StatusCode::BAD_GATEWAY,
                &format!("HubSpot token introspection failed: {e}"),
            );
        }
    };
    let next = match db::portals::store_oauth_tokens(
        &site.pool,
        &site.cipher,
        portal,
        grant.tokens(),
        "website:oauth",
    )
    .await
    {
        Ok(login) => after_login(portal, &login),
        Err(e) => {
            return page_error(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("Could not store the installation: {e}"),
            );
        }
    };
    with_cookies(
        Redirect::to(next).into_response(),
        &[
            session::set_cookie(
                SESSION_COOKIE,
                &site.sessions.issue(portal),
                session::SESSION_SECS,
                site.secure_cookies,
            ),
            session::set_cookie(STATE_COOKIE, "", 0, site.secure_cookies),
        ],
    )
}

/// Where a login lands: a paused or private-app portal is told what the
/// login did not change (the pages show why).
fn after_login(portal: PortalId, login: &db::portals::OAuthLogin) -> &'static str {
    tracing::info!(%portal, created = login.created, resumed = login.resumed,
        status = login.status.as_str(), auth = login.auth_kind.as_str(),
        "logged in through HubSpot");
    if login.status != PortalStatus::Active || login.auth_kind != HubSpotAuthKind::Oauth {
        "/settings?signed_in=1"
    } else {
        "/settings?installed=1"
    }
}

/// `POST /logout` (CSRF-checked): ends the session.
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<HashMap<String, String>>,
) -> Response {
    let (site, _portal) = match super::pages::checked_session(&state, &headers, &form) {
        Ok(x) => x,
        Err(r) => return r,
    };
    with_cookies(
        Redirect::to("/login").into_response(),
        &[session::set_cookie(
            SESSION_COOKIE,
            "",
            0,
            site.secure_cookies,
        )],
    )
}
