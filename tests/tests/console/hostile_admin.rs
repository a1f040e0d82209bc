//! The hostile-input catalogue, operator surface: attacks on the admin
//! API's tokens (empty, short, guessed, spoofed, brute-forced) and on the
//! website API's operator access. Each one is refused clearly, changes
//! nothing, and who acted is always the token's name.

use std::{net::SocketAddr, time::Duration};

use crate::{
    admin_api::{BOB, TOKEN, named_tokens},
    hostile_input::snapshot,
    support::e2e::{WorkerEnv, eventually},
};
use axum::{
    body::{Body, to_bytes},
    http::{HeaderMap, Request, StatusCode, header},
};
use secrecy::SecretString;
use serde_json::Value;
use shared::config::Settings;
use tower::ServiceExt;

async fn call(app: &axum::Router, req: Request<Body>) -> (StatusCode, HeaderMap, Value) {
    let resp = app.clone().oneshot(req).await.expect("infallible");
    let (status, headers) = (resp.status(), resp.headers().clone());
    let bytes = to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap_or_default();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, headers, body)
}

fn admin(settings: &Settings) -> axum::Router {
    console::admin::router(console::admin::AdminState::from_settings(settings))
}

/// A dead letter of portal 1001, straight into the table.
async fn dead_letter(pool: &sqlx::PgPool) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar(
        "INSERT INTO dead_letters (portal_id, object_type, object_id, reason_class, reason, events, attempts)
         VALUES (1001, 'contacts', 42, 'permanent', 'impact_rejected', '[]'::jsonb, 1) RETURNING id",
    )
    .fetch_one(pool)
    .await?)
}

#[tokio::test]
async fn an_empty_or_blank_token_leaves_the_admin_api_off_never_open() {
    for (token, tokens) in [
        (Some(""), None),
        (Some("  "), Some(" , ")),
        (None, Some("")),
    ] {
        let mut s = Settings::defaults();
        s.admin_token = token.map(SecretString::from);
        s.admin_tokens = tokens.map(SecretString::from);
        let app = admin(&s);
        for auth in [None, Some("Bearer "), Some("Bearer"), Some("Bearer x")] {
            let mut req = Request::get("/admin/api/dead-letters");
            if let Some(a) = auth {
                req = req.header(header::AUTHORIZATION, a);
            }
            let (status, _, body) = call(&app, req.body(Body::empty()).expect("request")).await;
            assert_eq!(
                status,
                StatusCode::SERVICE_UNAVAILABLE,
                "{token:?} {auth:?}"
            );
            assert_eq!(body["error"], "admin_disabled");
            let message = body["message"].as_str().unwrap_or_default();
            assert!(message.contains("CONNECTOR_ADMIN_TOKEN"), "{message}");
        }
    }
}

#[tokio::test]
async fn a_short_or_shared_operator_token_stops_the_console_with_a_one_line_error()
-> anyhow::Result<()> {
    let short = "s".repeat(31);
    let console = tools::binaries::Binaries::ensure(&["console"])?.path("console");
    for (var, value, says) in [
        (
            "CONNECTOR_ADMIN_TOKEN",
            short.clone(),
            "CONNECTOR_ADMIN_TOKEN: the token of \"admin\" is shorter than 32 bytes",
        ),
        (
            "CONNECTOR_ADMIN_TOKENS",
            format!("alice:{TOKEN},bob:{short}"),
            "CONNECTOR_ADMIN_TOKENS: the token of \"bob\" is shorter than 32 bytes",
        ),
        (
            "CONNECTOR_ADMIN_TOKENS",
            format!("alice:{TOKEN},bob:{TOKEN}"),
            "share one token",
        ),
    ] {
        let out = tokio::process::Command::new(&console)
            .arg("--check-config")
            .env(var, &value)
            .env_remove("CONNECTOR_CONFIG")
            .output()
            .await?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{var}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
        assert!(stderr.contains(says), "{stderr}");
        assert!(
            !stderr.contains(&short) && !stderr.contains(TOKEN),
            "{stderr}"
        );
    }
    // In process too: the console does not start (nothing is bound).
    let mut s = Settings::defaults();
    s.admin_token = Some(SecretString::from(short));
    let site = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let err = console::run(s, site, None, Default::default())
        .await
        .expect_err("refused");
    assert!(err.to_string().contains("CONNECTOR_ADMIN_TOKEN"), "{err}");
    Ok(())
}

/// Guesses against the token: every one gets the very same answer, whatever
/// its length or how much of the real token it shares, and nothing changes.
#[tokio::test]
async fn a_wrong_token_gets_the_same_answer_whatever_it_is() -> anyhow::Result<()> {
    let env = WorkerEnv::start().await?;
    let mut s = env.settings.clone();
    s.admin_tokens = named_tokens();
    s.admin_auth_max_failures = 1000;
    s.admin_auth_max_failures_global = 1000;
    let app = admin(&s);
    let letter = dead_letter(&env.pool).await?;
    let before = snapshot(&env.pool).await?;
    let upper = TOKEN.to_uppercase();
    let cases: Vec<(&str, Option<String>, &str)> = vec![
        ("no Authorization", None, "/admin/api/dead-letters"),
        (
            "an empty bearer",
            Some("Bearer ".into()),
            "/admin/api/dead-letters",
        ),
        (
            "one byte",
            Some("Bearer a".into()),
            "/admin/api/dead-letters",
        ),
        (
            "the real token but its last byte (31 bytes)",
            Some(format!("Bearer {}", &TOKEN[..TOKEN.len() - 1])),
            "/admin/api/dead-letters",
        ),
        (
            "the real token and one more byte",
            Some(format!("Bearer {TOKEN}x")),
            "/admin/api/dead-letters",
        ),
        (
            "the real token in upper case",
            Some(format!("Bearer {upper}")),
            "/admin/api/dead-letters",
        ),
        (
            "10,000 bytes",
            Some(format!("Bearer {}", "z".repeat(10_000))),
            "/admin/api/dead-letters",
        ),
        (
            "the real token under another scheme",
            Some(format!("Basic {TOKEN}")),
            "/admin/api/dead-letters",
        ),
        (
            "the real token in the query string",
            None,
            "/admin/api/dead-letters?token=alice-operator-token-0123456789abcdef",
        ),
        (
            "two tokens glued together",
            Some(format!("Bearer {TOKEN}{BOB}")),
            "/admin/api/dead-letters",
        ),
        (
            "a discard with a wrong token",
            Some("Bearer not-the-token-but-32-bytes-long!!".into()),
            "/admin/api/dead-letters/LETTER/discard",
        ),
    ];
    let mut answers = Vec::new();
    for (name, auth, path) in &cases {
        let path = path.replace("LETTER", &letter.to_string());
        let method = if path.ends_with("discard") {
            "POST"
        } else {
            "GET"
        };
        let mut req = Request::builder().method(method).uri(&path);
        if let Some(a) = auth {
            req = req.header(header::AUTHORIZATION, a);
        }
        let req = req
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(r#"{"reason":"guess"}"#))?;
        let (status, headers, body) = call(&app, req).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{name}: {body}");
        assert_eq!(
            headers.get(header::WWW_AUTHENTICATE).map(|v| v.as_bytes()),
            Some(&b"Bearer"[..]),
            "{name}"
        );
        answers.push(body);
    }
    assert!(
        answers.windows(2).all(|w| w[0] == w[1]),
        "one answer for every guess: {answers:?}"
    );
    assert_eq!(answers[0]["error"], "invalid_token");
    assert_eq!(snapshot(&env.pool).await?, before, "nothing changed");
    // The control: the real token, with a stray space, is let in.
    let req = Request::get("/admin/api/dead-letters")
        .header(header::AUTHORIZATION, format!("bearer  {TOKEN} "))
        .body(Body::empty())?;
    assert_eq!(call(&app, req).await.0, StatusCode::OK);
    env.finish().await;
    Ok(())
}

/// Who acted is the token's name: a self-asserted `X-Operator` is not
/// recorded, on the admin API nor on the website's API.
#[tokio::test]
async fn the_audit_names_the_token_never_a_claimed_operator() -> anyhow::Result<()> {
    let env = WorkerEnv::start().await?;
    let mut s = env.settings.clone();
    s.admin_tokens = named_tokens();
    s.public_url = Some("http://connector.test".into());
    let app = admin(&s);
    let letter = dead_letter(&env.pool).await?;
    let req = Request::post(format!("/admin/api/dead-letters/{letter}/discard"))
        .header(header::AUTHORIZATION, format!("Bearer {BOB}"))
        .header("x-operator", "alice")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(r#"{"reason":"test data"}"#))?;
    let (status, _, body) = call(&app, req).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (actor, resolved_by): (String, Option<String>) = sqlx::query_as(
        "SELECT a.actor, d.resolved_by FROM audit_log a, dead_letters d
         WHERE a.action = 'dead_letter.discard' AND d.id = $1",
    )
    .bind(letter)
    .fetch_one(&env.pool)
    .await?;
    assert_eq!(actor, "admin:bob");
    assert_eq!(resolved_by.as_deref(), Some("admin:bob"));
    // The website's JSON API names the operator too.
    let site = console::app(console::AppState::from_settings(&s));
    let req = Request::get("/api/v1/session")
        .header(header::AUTHORIZATION, format!("Bearer {BOB}"))
        .header("x-operator", "alice")
        .body(Body::empty())?;
    let (status, _, body) = call(&site, req).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["name"], "bob", "{body}");
    env.finish().await;
    Ok(())
}

/// An audit row: portal, actor, action, detail, outcome.
type AuditRow = (Option<i64>, String, String, Value, Option<String>);

/// Every read of dead letters, conversions and replay requests is in the
/// audit log: who, which route, what was returned.
#[tokio::test]
async fn reads_of_personal_data_are_audited() -> anyhow::Result<()> {
    let env = WorkerEnv::start().await?;
    let mut s = env.settings.clone();
    s.admin_tokens = named_tokens();
    let app = admin(&s);
    let letter = dead_letter(&env.pool).await?;
    for path in [
        "/admin/api/dead-letters?portal=1001&text=impact_rej".to_owned(),
        format!("/admin/api/dead-letters/{letter}"),
        "/admin/api/conversions?portal=1001".to_owned(),
        "/admin/api/replays".to_owned(),
    ] {
        let req = Request::get(&path)
            .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
            .body(Body::empty())?;
        let (status, _, body) = call(&app, req).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
    }
    let rows: Vec<AuditRow> = sqlx::query_as(
        "SELECT portal_id, actor, action, detail, outcome FROM audit_log ORDER BY id",
    )
    .fetch_all(&env.pool)
    .await?;
    let actions: Vec<&str> = rows.iter().map(|r| r.2.as_str()).collect();
    assert_eq!(
        actions,
        [
            "dead_letter.list",
            "dead_letter.show",
            "conversion.list",
            "replay.list"
        ]
    );
    assert!(
        rows.iter()
            .all(|r| r.1 == "admin:alice" && r.4.as_deref() == Some("read"))
    );
    let (portal, _, _, list, _) = &rows[0];
    assert_eq!(*portal, Some(1001));
    assert_eq!(list["route"], "GET /admin/api/dead-letters");
    assert_eq!(list["dead_letters"]["ids"], serde_json::json!([letter]));
    // The searched text may be a person's address: only that there was one.
    assert_eq!(list["filter"]["text"], true);
    assert!(!list.to_string().contains("impact_rej"), "{list}");
    assert_eq!(rows[1].3["dead_letter"], letter);
    assert_eq!(rows[1].0, Some(1001));
    // A refused read is not a read.
    let req = Request::get("/admin/api/dead-letters/999999")
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .body(Body::empty())?;
    assert_eq!(call(&app, req).await.0, StatusCode::NOT_FOUND);
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_log")
        .fetch_one(&env.pool)
        .await?;
    assert_eq!(n, 4);
    env.finish().await;
    Ok(())
}

/// A console on real sockets (`CONNECTOR_ADMIN_ADDR` and the website's),
/// with small limits: the addresses and the stop switch.
async fn console_on_sockets(
    env: &WorkerEnv,
    tweak: impl FnOnce(&mut Settings),
) -> anyhow::Result<(SocketAddr, SocketAddr, tokio_util::sync::CancellationToken)> {
    let mut s = env.settings.clone();
    s.admin_tokens = named_tokens();
    s.public_url = Some("http://connector.test".into());
    tweak(&mut s);
    let site = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let admin = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addrs = (site.local_addr()?, admin.local_addr()?);
    let shutdown = tokio_util::sync::CancellationToken::new();
    tokio::spawn(console::run(s, site, Some(admin), shutdown.clone()));
    let http = reqwest::Client::new();
    eventually(Duration::from_secs(10), "the console", || async {
        Ok(http
            .get(format!("http://{}/metrics", addrs.1))
            .send()
            .await
            .is_ok())
    })
    .await?;
    Ok((addrs.0, addrs.1, shutdown))
}

/// A client whose connections come from `ip` (any 127.0.0.0/8 address is
/// this machine's loopback).
fn client_from(ip: [u8; 4]) -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .local_address(std::net::IpAddr::from(ip))
        .build()?)
}

async fn get_status(
    c: &reqwest::Client,
    url: &str,
    token: &str,
) -> anyhow::Result<(StatusCode, Option<u64>)> {
    let r = c
        .get(url)
        .bearer_auth(token)
        .header("x-forwarded-for", "203.0.113.9")
        .send()
        .await?;
    let retry = r
        .headers()
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    Ok((r.status(), retry))
}

#[tokio::test]
async fn repeated_failures_lock_one_client_out_while_another_gets_in() -> anyhow::Result<()> {
    let env = WorkerEnv::start().await?;
    let (site, admin_addr, shutdown) = console_on_sockets(&env, |s| {
        s.admin_auth_max_failures = 3;
        s.admin_auth_max_failures_global = 100;
        s.admin_auth_lockout_secs = 2;
    })
    .await?;
    let url = format!("http://{admin_addr}/admin/api/dead-letters");
    let (a, b) = (client_from([127, 0, 0, 2])?, client_from([127, 0, 0, 3])?);
    for _ in 0..3 {
        assert_eq!(
            get_status(&a, &url, "guess").await?.0,
            StatusCode::UNAUTHORIZED
        );
    }
    // Locked out: even the right token is refused, without being looked
    // at; a forged X-Forwarded-For changes nothing.
    let (status, retry) = get_status(&a, &url, TOKEN).await?;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(retry.is_some_and(|s| (1..=2).contains(&s)), "{retry:?}");
    // Another client is let in.
    assert_eq!(get_status(&b, &url, BOB).await?.0, StatusCode::OK);
    // The lockout ends.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(get_status(&a, &url, TOKEN).await?.0, StatusCode::OK);
    // The website's API counts failed operator tokens the same way.
    let api = format!("http://{site}/api/v1/portals");
    for _ in 0..3 {
        assert_eq!(
            get_status(&a, &api, "guess").await?.0,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        get_status(&a, &api, TOKEN).await?.0,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(get_status(&b, &api, BOB).await?.0, StatusCode::OK);
    let metrics = reqwest::get(format!("http://{admin_addr}/metrics"))
        .await?
        .text()
        .await?;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("console_operator_lockouts_total")
                && l.contains("scope=\"client\"")
                && l.contains("surface=\"admin\"")
                && !l.ends_with(" 0")),
        "{metrics}"
    );
    shutdown.cancel();
    env.finish().await;
    Ok(())
}

#[tokio::test]
async fn failures_from_many_clients_lock_everyone_out_for_the_window() -> anyhow::Result<()> {
    let env = WorkerEnv::start().await?;
    let (_, admin_addr, shutdown) = console_on_sockets(&env, |s| {
        s.admin_auth_max_failures = 100;
        s.admin_auth_max_failures_global = 4;
        s.admin_auth_lockout_secs = 30;
    })
    .await?;
    let url = format!("http://{admin_addr}/admin/api/dead-letters");
    for i in 0..4u8 {
        let c = client_from([127, 0, 1, 10 + i])?;
        assert_eq!(
            get_status(&c, &url, "guess").await?.0,
            StatusCode::UNAUTHORIZED
        );
    }
    let fresh = client_from([127, 0, 1, 99])?;
    let r = fresh.get(&url).bearer_auth(TOKEN).send().await?;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let body: Value = r.json().await?;
    assert_eq!(body["error"], "too_many_failures");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("from all clients")),
        "{body}"
    );
    shutdown.cancel();
    env.finish().await;
    Ok(())
}
