//! The hostile-input catalogue, website side: replayed sessions after a
//! logout or an uninstall, framing and sniffing (security headers),
//! cookies an https site must scope to itself, OAuth `state` reuse, saves
//! and deletions based on a stale page, and error pages that must not
//! tell a visitor about the database or the configuration.

use std::collections::HashMap;

use crate::support::website::{Auth, Login, OPERATOR_TOKEN, WebEnv, answer, website_settings};
use axum::{
    body::Body,
    http::{Method, Request, StatusCode, header},
};
use sandbox::HubUser;
use serde_json::json;
use tower::ServiceExt;

const P1: u64 = 1001;

async fn configure(w: &WebEnv, s: &Login) {
    let a = w
        .submit(
            s,
            "/settings",
            &[
                ("account_sid", "IRsandbox"),
                ("auth_token", "sandbox-token"),
                ("program_id", "1000"),
            ],
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
}

async fn sessions(w: &WebEnv) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar("SELECT count(*) FROM website_sessions")
        .fetch_one(&w.env.pool)
        .await?)
}

#[tokio::test]
async fn a_session_cookie_replayed_after_logout_is_refused() -> anyhow::Result<()> {
    let w = WebEnv::start().await?;
    let s = w.install(P1).await?;
    configure(&w, &s).await;
    assert_eq!(
        w.get("/settings", Some(&s.cookie)).await.status,
        StatusCode::OK
    );
    let out = w.submit(&s, "/logout", &[]).await;
    assert!(out.location().ends_with("/login"));
    assert_eq!(
        out.cookie("connector_session").as_deref(),
        Some("connector_session=")
    );
    assert_eq!(sessions(&w).await?, 0, "the server forgot the session");
    // A copy of the cookie (and its CSRF token) taken before the logout:
    let page = w.get("/settings", Some(&s.cookie)).await;
    assert!(page.location().ends_with("/login"), "{}", page.status);
    let api = w
        .api(Method::GET, "/api/v1/portals/1001", Auth::Session(&s), None)
        .await;
    assert_eq!(api.status, StatusCode::UNAUTHORIZED, "{}", api.body);
    let before: String = sqlx::query_scalar("SELECT impact_program_id FROM portals")
        .fetch_one(&w.env.pool)
        .await?;
    let write = w
        .submit(
            &s,
            "/settings",
            &[("account_sid", "IRsandbox"), ("program_id", "2000")],
        )
        .await;
    assert!(write.location().ends_with("/login"));
    let after: String = sqlx::query_scalar("SELECT impact_program_id FROM portals")
        .fetch_one(&w.env.pool)
        .await?;
    assert_eq!(before, after);
    w.finish().await;
    Ok(())
}

#[tokio::test]
async fn an_uninstall_noticed_by_a_worker_ends_the_portals_sessions() -> anyhow::Result<()> {
    let w = WebEnv::start().await?;
    let a = w.install(P1).await?;
    let b = w.install(P1).await?;
    let other = w.install(1002).await?;
    assert_eq!(sessions(&w).await?, 3);
    w.env.sandbox.hubspot().uninstall(P1)?;
    sqlx::query("UPDATE portals SET hubspot_token_expires_at = now()")
        .execute(&w.env.pool)
        .await?;
    // The worker's refresh (not the website) learns of the uninstall.
    let refreshed = shared::hubspot::tokens::oauth_access_token(
        &w.env.pool,
        &w.env.worker.cipher,
        &w.env.worker.hubspot,
        w.env.worker.oauth_app.as_ref(),
        domain::events::PortalId(P1),
        None,
    )
    .await;
    assert!(
        matches!(
            refreshed,
            Err(shared::hubspot::tokens::TokenError::Revoked(_))
        ),
        "{refreshed:?}"
    );
    for s in [&a, &b] {
        let r = w.get("/settings", Some(&s.cookie)).await;
        assert!(r.location().ends_with("/login"), "{}", r.status);
    }
    let r = w.get("/settings", Some(&other.cookie)).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "another portal's session lives on"
    );
    assert_eq!(sessions(&w).await?, 1);
    w.finish().await;
    Ok(())
}

#[tokio::test]
async fn the_audit_log_names_the_hubspot_user_who_acted() -> anyhow::Result<()> {
    let w = WebEnv::start().await?;
    let jane = HubUser {
        id: 77,
        email: "jane@example.com".into(),
    };
    let s = w.install_as(P1, jane).await?;
    configure(&w, &s).await;
    let put = w
        .api(
            Method::PUT,
            "/api/v1/portals/1001/triggers",
            Auth::Session(&s),
            Some(json!({"contacts": {"on_create": true}})),
        )
        .await;
    assert!(put.status.is_success(), "{}", put.body);
    let actors: Vec<String> =
        sqlx::query_scalar("SELECT actor FROM audit_log WHERE portal_id = 1001 ORDER BY id")
            .fetch_all(&w.env.pool)
            .await?;
    for expected in [
        "website:oauth:portal:1001:user:77:jane@example.com",
        "website:portal:1001:user:77:jane@example.com",
        "api:portal:1001:user:77:jane@example.com",
    ] {
        assert!(
            actors.iter().any(|a| a == expected),
            "{expected}: {actors:?}"
        );
    }
    let user: Option<String> = sqlx::query_scalar("SELECT hubspot_user FROM website_sessions")
        .fetch_one(&w.env.pool)
        .await?;
    assert_eq!(user.as_deref(), Some("jane@example.com"));
    w.finish().await;
    Ok(())
}

/// The headers every page and answer must carry.
fn assert_secure_headers(path: &str, a: &crate::support::website::Answer, hsts: bool) {
    let h = |n: &str| {
        a.headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let csp = h("content-security-policy");
    assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp:?}");
    assert!(csp.contains("default-src 'none'"), "{path}: {csp:?}");
    assert!(!csp.contains("unsafe-inline"), "{path}: {csp:?}");
    assert_eq!(h("x-frame-options"), "DENY", "{path}");
    assert_eq!(h("x-content-type-options"), "nosniff", "{path}");
    assert_eq!(h("referrer-policy"), "no-referrer", "{path}");
    assert_eq!(h("cache-control"), "no-store", "{path}");
    assert_eq!(h("strict-transport-security").is_empty(), !hsts, "{path}");
}

#[tokio::test]
async fn every_page_and_answer_refuses_framing_sniffing_and_caching() -> anyhow::Result<()> {
    let w = WebEnv::start().await?;
    let s = w.install(P1).await?;
    configure(&w, &s).await;
    for path in [
        "/login",
        "/settings",
        "/triggers",
        "/mappings",
        "/preview",
        "/activity",
        "/activity?q=x&status=delivered",
        "/dashboard",
        "/account",
        "/api/v1/session",
        "/api/v1/portals/1001",
        "/api/v1/portals/1001/activity",
        "/no-such-page",
        "/oauth/callback?state=x",
    ] {
        let a = w.get(path, Some(&s.cookie)).await;
        assert_secure_headers(path, &a, false);
        // Nothing inline that the policy would have to allow: the one
        // script is a served file.
        for inline in ["<style", " style=", " onclick=", " onload="] {
            assert!(!a.body.contains(inline), "{path} has {inline}");
        }
        for script in a.body.split("<script").skip(1) {
            assert!(
                script.starts_with(" src=\"/static/time.js\" defer></script>"),
                "{path} has an inline script: <script{script}"
            );
        }
    }
    let js = w.get("/static/time.js", None).await;
    assert_eq!(js.status, StatusCode::OK);
    assert!(js.body.contains("time[datetime]"));
    assert_eq!(
        js.headers.get("content-type").and_then(|v| v.to_str().ok()),
        Some("text/javascript; charset=utf-8")
    );
    let css = w.get("/static/site.css", None).await;
    assert_eq!(css.status, StatusCode::OK);
    assert!(css.body.contains("nav{"));
    // Over https: HSTS too.
    let mut settings = website_settings(&w.env, "HTTPS://Connector.Example");
    settings.console_public_url = None;
    let app = console::app(console::AppState::from_settings(&settings));
    let a = answer(
        app.oneshot(Request::get("/login").body(Body::empty())?)
            .await?,
    )
    .await;
    assert_secure_headers("/login over https", &a, true);
    w.finish().await;
    Ok(())
}

/// Cookie `name`'s `Set-Cookie` line in `a`.
fn set_cookie(a: &crate::support::website::Answer, name: &str) -> String {
    a.headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with(&format!("{name}=")))
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn over_https_cookies_are_host_prefixed_and_secure() -> anyhow::Result<()> {
    let w = WebEnv::start().await?;
    // The scheme in capitals is https all the same.
    let settings = website_settings(&w.env, "HTTPS://connector.example");
    let app = console::app(console::AppState::from_settings(&settings));
    let send = |req: Request<Body>| {
        let app = app.clone();
        async move { answer(app.oneshot(req).await.expect("infallible")).await }
    };
    let start = send(Request::get("/oauth/start").body(Body::empty())?).await;
    let state_cookie = set_cookie(&start, "__Host-connector_oauth_state");
    for part in ["; Secure", "Path=/", "HttpOnly"] {
        assert!(state_cookie.contains(part), "{state_cookie}");
    }
    assert!(!state_cookie.contains("Domain"), "{state_cookie}");
    let url = url::Url::parse(&start.location())?;
    let q: HashMap<_, _> = url.query_pairs().into_owned().collect();
    let code = w
        .env
        .sandbox
        .hubspot()
        .authorize(P1, &q["redirect_uri"], &q["state"])?;
    let cb = send(
        Request::get(format!("/oauth/callback?code={code}&state={}", q["state"]))
            .header(header::COOKIE, state_cookie.split(';').next().unwrap_or(""))
            .body(Body::empty())?,
    )
    .await;
    assert!(cb.status.is_redirection(), "{} {}", cb.status, cb.body);
    let session = set_cookie(&cb, "__Host-connector_session");
    assert!(
        session.contains("; Secure") && session.contains("Path=/"),
        "{session}"
    );
    let pair = session.split(';').next().unwrap_or_default().to_owned();
    let ok = send(
        Request::get("/settings")
            .header(header::COOKIE, &pair)
            .body(Body::empty())?,
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK);
    // The same value under the unprefixed name (which a sibling subdomain
    // could set) opens nothing.
    let bare = pair.replacen("__Host-", "", 1);
    let no = send(
        Request::get("/settings")
            .header(header::COOKIE, bare)
            .body(Body::empty())?,
    )
    .await;
    assert!(no.location().ends_with("/login"));
    w.finish().await;
    Ok(())
}

#[tokio::test]
async fn the_oauth_state_cookie_is_cleared_on_every_path() -> anyhow::Result<()> {
    let w = WebEnv::start().await?;
    let start = w.get("/oauth/start", None).await;
    let url = url::Url::parse(&start.location())?;
    let q: HashMap<_, _> = url.query_pairs().into_owned().collect();
    let state = q["state"].clone();
    let cookie = format!("connector_oauth_state={state}");
    let code = w
        .env
        .sandbox
        .hubspot()
        .authorize(P1, &q["redirect_uri"], &state)?;
    let cases: Vec<(&str, String, Option<&str>, bool)> = vec![
        (
            "state mismatch",
            "state=forged".into(),
            Some(&cookie),
            false,
        ),
        (
            "no state cookie (expired)",
            format!("state={state}"),
            None,
            false,
        ),
        (
            "HubSpot's error",
            format!("state={state}&error=access_denied"),
            Some(&cookie),
            false,
        ),
        (
            "a code HubSpot refuses",
            format!("state={state}&code=nope"),
            Some(&cookie),
            false,
        ),
        (
            "success",
            format!("state={state}&code={code}"),
            Some(&cookie),
            true,
        ),
    ];
    for (name, query, cookie, success) in cases {
        let a = w.get(&format!("/oauth/callback?{query}"), cookie).await;
        let cleared = set_cookie(&a, "connector_oauth_state");
        assert!(
            cleared.starts_with("connector_oauth_state=;"),
            "{name}: {cleared:?}"
        );
        assert!(cleared.contains("Max-Age=0"), "{name}: {cleared}");
        assert_eq!(
            a.status.is_redirection(),
            success,
            "{name}: {} {}",
            a.status,
            a.body
        );
        assert!(
            !a.body.contains("BAD_AUTH_CODE"),
            "{name}: HubSpot's answer is logged, not shown"
        );
    }
    w.finish().await;
    Ok(())
}

#[tokio::test]
async fn a_save_or_removal_from_a_stale_page_is_refused() -> anyhow::Result<()> {
    let w = WebEnv::start().await?;
    let s = w.install(P1).await?;
    configure(&w, &s).await;
    let add = |from: &'static str, to: &'static str, v: i64| {
        let s = s.clone();
        let w = &w;
        async move {
            let v = v.to_string();
            w.submit(
                &s,
                "/mappings/add",
                &[
                    ("object_type", "contacts"),
                    ("from", from),
                    ("to", to),
                    ("version", &v),
                ],
            )
            .await
        }
    };
    let v = w
        .api(Method::GET, "/api/v1/portals/1001", Auth::Session(&s), None)
        .await
        .json()["version"]
        .as_i64()
        .unwrap_or(-1);
    assert_eq!(
        add("email", "CustomerEmail", v).await.status,
        StatusCode::OK
    );
    assert_eq!(
        add("city", "CustomerCity", v + 1).await.status,
        StatusCode::OK
    );
    let opened = v + 2; // two tabs open the mappings page at this version
    let rows = || async {
        sqlx::query_scalar::<_, String>(
            "SELECT target FROM mappings WHERE portal_id = 1001 ORDER BY position",
        )
        .fetch_all(&w.env.pool)
        .await
    };
    assert_eq!(rows().await?, ["CustomerEmail", "CustomerCity"]);
    let first = w
        .submit(
            &s,
            "/mappings/remove",
            &[
                ("object_type", "contacts"),
                ("index", "0"),
                ("version", &opened.to_string()),
            ],
        )
        .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    // The second tab still shows CustomerEmail as row 0: removing "row 0"
    // now would remove CustomerCity instead.
    let stale = w
        .submit(
            &s,
            "/mappings/remove",
            &[
                ("object_type", "contacts"),
                ("index", "0"),
                ("version", &opened.to_string()),
            ],
        )
        .await;
    assert_eq!(stale.status, StatusCode::CONFLICT, "{}", stale.body);
    assert!(
        stale.body.contains("changed by someone else"),
        "{}",
        stale.body
    );
    assert_eq!(rows().await?, ["CustomerCity"]);
    // A stale settings save, trigger removal and rules save: refused too.
    let old = opened.to_string();
    for (path, fields) in [
        (
            "/settings",
            vec![("account_sid", "IRsandbox"), ("program_id", "2000")],
        ),
        (
            "/triggers/active",
            vec![("object_type", "contacts"), ("active", "true")],
        ),
        (
            "/triggers/remove",
            vec![("object_type", "contacts"), ("property", "x")],
        ),
        (
            "/triggers/adjustments",
            vec![("object_type", "deals"), ("reverse_on_delete", "on")],
        ),
    ] {
        let mut all = fields.clone();
        all.push(("version", &old));
        let a = w.submit(&s, path, &all).await;
        assert!(
            a.body.contains("changed by someone else"),
            "{path}: {} {}",
            a.status,
            a.body
        );
    }
    let program: String = sqlx::query_scalar("SELECT impact_program_id FROM portals")
        .fetch_one(&w.env.pool)
        .await?;
    assert_eq!(program, "1000", "the stale save overwrote nothing");
    // The API: If-Match with the ETag of a GET.
    let get = w
        .api(Method::GET, "/api/v1/portals/1001", Auth::Session(&s), None)
        .await;
    let etag = get
        .headers
        .get(header::ETAG)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    assert_eq!(etag, format!("\"{}\"", get.json()["version"]));
    let put = |tag: String| {
        let req = Request::put("/api/v1/portals/1001/triggers")
            .header(header::COOKIE, &s.cookie)
            .header("x-csrf-token", &s.csrf)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::IF_MATCH, tag)
            .body(Body::from(
                json!({"contacts": {"on_create": true}}).to_string(),
            ))
            .expect("request");
        w.send(req)
    };
    assert!(put(etag.clone()).await.status.is_success());
    let again = put(etag).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(again.json()["error"], "stale_version");
    let op = w
        .api(
            Method::GET,
            "/api/v1/portals/1001",
            Auth::Operator(OPERATOR_TOKEN),
            None,
        )
        .await;
    assert_eq!(op.json()["triggers"]["contacts"]["on_create"], true);
    w.finish().await;
    Ok(())
}

#[tokio::test]
async fn database_and_configuration_problems_are_not_shown_to_visitors() -> anyhow::Result<()> {
    let w = WebEnv::start().await?;
    let s = w.install(P1).await?;
    let leaks = [
        "127.0.0.1:1",
        "Connection refused",
        "CONNECTOR_",
        "sqlx",
        "pool timed out",
    ];
    let check = |name: &str, a: &crate::support::website::Answer| {
        for leak in leaks {
            assert!(!a.body.contains(leak), "{name} shows {leak:?}: {}", a.body);
        }
        assert!(a.body.contains("reference"), "{name}: {}", a.body);
    };
    // The database is down (a valid session cookie still reaches it).
    let mut down = website_settings(&w.env, crate::support::website::PUBLIC_URL);
    down.database_url = "postgres://postgres@127.0.0.1:1/test".into();
    let app = console::app(console::AppState::from_settings(&down));
    for path in ["/settings", "/api/v1/portals/1001"] {
        let req = Request::get(path)
            .header(header::COOKIE, &s.cookie)
            .body(Body::empty())?;
        let a = answer(app.clone().oneshot(req).await?).await;
        assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE, "{path}");
        check(path, &a);
    }
    // The website is not configured: the missing setting is logged only.
    let mut unset = website_settings(&w.env, crate::support::website::PUBLIC_URL);
    unset.hubspot_client_id = None;
    let app = console::app(console::AppState::from_settings(&unset));
    for path in ["/login", "/api/v1/portals"] {
        let a = answer(
            app.clone()
                .oneshot(Request::get(path).body(Body::empty())?)
                .await?,
        )
        .await;
        assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE, "{path}");
        check(path, &a);
    }
    // A broken authorize URL.
    let mut broken = website_settings(&w.env, crate::support::website::PUBLIC_URL);
    broken.hubspot_authorize_url = "not a url".into();
    let app = console::app(console::AppState::from_settings(&broken));
    let a = answer(
        app.oneshot(Request::get("/oauth/start").body(Body::empty())?)
            .await?,
    )
    .await;
    assert_eq!(a.status, StatusCode::INTERNAL_SERVER_ERROR);
    check("/oauth/start", &a);
    w.finish().await;
    Ok(())
}
