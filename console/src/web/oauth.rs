//! The install flow: `/oauth/start` sends the browser to HubSpot's authorize
//! page with a random `state` (also kept in an HttpOnly cookie); HubSpot
//! sends it back to `/oauth/callback?code=..&state=..`; the state is checked,
//! the code exchanged (`POST /oauth/2026-03/token`), the portal id and the
//! HubSpot user learnt by introspection, the tokens stored encrypted, and a
//! session opened. A reinstall after an uninstall finds the old
//! configuration and resumes it; a login never resumes a portal an operator
//! paused, nor moves a private-app portal to OAuth
//! (`shared::db::portals::store_oauth_tokens`). The state cookie is cleared
//! by every answer of the callback (success, HubSpot's error, mismatch,
//! expiry), so a state is good for one attempt only.

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
    Website,
    pages::{internal_error, page_error, site},
    session,
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
    let mut url = match url::Url::parse(&site.authorize_url) {
        Ok(u) => u,
        Err(e) => return internal_error("CONNECTOR_HUBSPOT_AUTHORIZE_URL is not a URL", e),
    };
    url.query_pairs_mut()
        .append_pair("client_id", &site.app.client_id)
        .append_pair("redirect_uri", &site.redirect_uri)
        .append_pair("scope", super::SCOPES)
        .append_pair("state", &nonce);
    let c = site.cookies;
    with_cookies(
        Redirect::to(url.as_str()).into_response(),
        &[c.set(c.state(), &nonce, 600)],
    )
}

/// `GET /oauth/callback`: HubSpot's answer. Whatever it is, the state
/// cookie is cleared.
pub async fn callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let site = match site(&state) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let c = site.cookies;
    let resp = install(&site, &headers, &q).await;
    with_cookies(resp, &[c.clear(c.state())])
}

async fn install(site: &Website, headers: &HeaderMap, q: &HashMap<String, String>) -> Response {
    let expected = session::cookie(headers, site.cookies.state()).unwrap_or_default();
    let given = q.get("state").map(String::as_str).unwrap_or_default();
    if expected.is_empty() || !session::same(expected, given) {
        return page_error(
            StatusCode::BAD_REQUEST,
            "The login could not be verified (state mismatch or expired). Start again from the login page.",
        );
    }
    if let Some(e) = q.get("error") {
        tracing::info!(error = %e, "HubSpot did not authorize the app");
        return page_error(
            StatusCode::BAD_REQUEST,
            "HubSpot did not authorize the app. Start again from the login page.",
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
            let id = shared::http::logged("OAuth code exchange", &e);
            return page_error(
                StatusCode::BAD_GATEWAY,
                &format!(
                    "HubSpot refused the authorization code. Start again from the login page (reference {id})."
                ),
            );
        }
    };
    let info = match site
        .hubspot
        .introspect(&site.app, &grant.access_token)
        .await
    {
        Ok(Some(i)) => i,
        Ok(None) => {
            return page_error(
                StatusCode::BAD_GATEWAY,
                "HubSpot says the new token is not active. Start again from the login page.",
            );
        }
        Err(e) => {
            let id = shared::http::logged("OAuth token introspection", &e);
            return page_error(
                StatusCode::BAD_GATEWAY,
                &format!(
                    "HubSpot could not confirm the login. Start again from the login page (reference {id})."
                ),
            );
        }
    };
    let portal = PortalId(info.hub_id);
    let user = session::User {
        id: info.user_id.and_then(|i| i64::try_from(i).ok()),
        email: info.user.clone(),
    };
    match open(site, portal, &user, grant.tokens()).await {
        Ok((next, cookie)) => with_cookies(Redirect::to(next).into_response(), &[cookie]),
        Err(e) => internal_error("the installation could not be stored", e),
    }
}

/// Stores the tokens and opens a session; returns where the login lands and
/// the session's `Set-Cookie`.
async fn open(
    site: &Website,
    portal: PortalId,
    user: &session::User,
    tokens: db::portals::OAuthTokens<'_>,
) -> Result<(&'static str, String), db::portals::PortalStoreError> {
    let actor = user.actor("website:oauth", portal);
    let login =
        db::portals::store_oauth_tokens(&site.pool, &site.cipher, portal, tokens, &actor).await?;
    let next = after_login(portal, user, &login);
    let issued = site.sessions.issue(portal);
    let who = db::sessions::SessionUser {
        user_id: user.id,
        user: user.email.clone(),
    };
    db::sessions::open(
        &site.pool,
        &issued.key,
        portal.db_key(),
        &who,
        session::SESSION_SECS,
    )
    .await?;
    let c = site.cookies;
    Ok((
        next,
        c.set(c.session(), &issued.cookie, session::SESSION_SECS),
    ))
}

/// Where a login lands: a paused or private-app portal is told what the
/// login did not change (the pages show why).
fn after_login(
    portal: PortalId,
    user: &session::User,
    login: &db::portals::OAuthLogin,
) -> &'static str {
    tracing::info!(%portal, created = login.created, resumed = login.resumed,
        status = login.status.as_str(), auth = login.auth_kind.as_str(),
        user = ?user.email, "logged in through HubSpot");
    if login.status != PortalStatus::Active || login.auth_kind != HubSpotAuthKind::Oauth {
        "/settings?signed_in=1"
    } else if login.created {
        "/settings?installed=1"
    } else {
        "/dashboard"
    }
}

/// `POST /logout` (CSRF-checked): ends the session, on the server too: the
/// cookie, copied or replayed, no longer opens anything.
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<HashMap<String, String>>,
) -> Response {
    let s = match super::pages::checked_session(&state, &headers, &form).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let key = session::cookie(&headers, s.site.cookies.session())
        .and_then(|v| s.site.sessions.check(v))
        .map(|signed| signed.key);
    if let Some(key) = key
        && let Err(e) = db::sessions::end(&s.site.pool, &key).await
    {
        return internal_error("the session could not be ended", e);
    }
    let c = s.site.cookies;
    with_cookies(
        Redirect::to("/login").into_response(),
        &[c.clear(c.session())],
    )
}
