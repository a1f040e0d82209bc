//! The admin HTTP API (`/admin/api/...`, the console's own listener):
//! named operator tokens, dead-letter list, show, replay (requests a worker
//! running in the test carries out) and discard, through the router without
//! a socket; and the listener that serves `/metrics` but no admin API
//! without a token. The attacks on it are in `hostile_admin`.

use crate::support::{
    e2e::{PORTAL, WorkerEnv, seed_contact_mappings, spawn_worker},
    website::replay_finished,
};
use axum::{
    body::{Body, to_bytes},
    http::{Request, StatusCode},
};
use secrecy::SecretString;
use serde_json::{Value, json};
use shared::config::Settings;
use tower::ServiceExt;

/// Alice's operator token (bob has his own: [`named_tokens`]).
pub const TOKEN: &str = "alice-operator-token-0123456789abcdef";
/// Bob's.
pub const BOB: &str = "bob-operator-token-0123456789abcdef00";

/// `CONNECTOR_ADMIN_TOKENS` naming alice and bob.
pub fn named_tokens() -> Option<SecretString> {
    Some(SecretString::from(format!("alice:{TOKEN},bob:{BOB}")))
}

fn admin_app(settings: &Settings) -> axum::Router {
    console::admin::router(console::admin::AdminState::from_settings(settings))
}

async fn call(app: &axum::Router, req: Request<Body>) -> (StatusCode, Value) {
    let resp = app.clone().oneshot(req).await.expect("infallible");
    let status = resp.status();
    let bytes = to_bytes(resp.into_body(), usize::MAX).await.expect("body");
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn get(path: &str, token: Option<&str>) -> Request<Body> {
    let mut r = Request::get(path);
    if let Some(t) = token {
        r = r.header("authorization", format!("Bearer {t}"));
    }
    r.body(Body::empty()).expect("request")
}

fn post(path: &str, body: Value) -> Request<Body> {
    Request::post(path)
        .header("authorization", format!("Bearer {TOKEN}"))
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .expect("request")
}

fn doc(program: &str) -> Value {
    json!({
        "triggers": { "contacts": { "on_create": true } },
        "mappings": { "contacts": seed_contact_mappings() },
        "impact": { "account_sid": "IRsandbox", "auth_token": "sandbox-token", "program_id": program },
    })
}

/// Posts a replay, expects 202 and waits for the worker to finish it.
async fn replay(env: &WorkerEnv, app: &axum::Router, path: &str, body: Value) -> Value {
    let (status, accepted) = call(app, post(path, body)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    let id = accepted["replay_id"]
        .as_str()
        .and_then(|i| i.parse().ok())
        .expect("a replay id");
    replay_finished(&env.pool, id).await.expect("finished");
    let (status, shown) = call(app, get(&format!("/admin/api/replays/{id}"), Some(TOKEN))).await;
    assert_eq!(status, StatusCode::OK, "{shown}");
    assert_eq!(shown["status"], "done", "{shown}");
    shown
}

#[tokio::test]
async fn without_a_token_the_admin_api_is_off() {
    let app = console::admin::router(console::admin::AdminState::disabled());
    let (status, body) = call(&app, get("/admin/api/dead-letters", Some("x"))).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["error"], "admin_disabled");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("CONNECTOR_ADMIN_TOKEN")),
        "{body}"
    );

    // A token but no usable store (no encryption key): 503, clearly.
    let mut s = Settings::defaults();
    s.admin_tokens = named_tokens();
    let app = admin_app(&s);
    let (status, body) = call(&app, get("/admin/api/dead-letters", Some(TOKEN))).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"], "store_unavailable");
    let (status, _) = call(&app, get("/admin/api/dead-letters", Some("wrong"))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn with_an_empty_token_the_admin_listener_serves_metrics_and_no_admin_api()
-> anyhow::Result<()> {
    let mut s = Settings::defaults();
    s.admin_token = Some(SecretString::from(""));
    s.amqp_url = "amqp://guest:guest@127.0.0.1:1/%2f".into();
    let site = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let admin = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let (site_addr, admin_addr) = (site.local_addr()?, admin.local_addr()?);
    let shutdown = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(console::run(s, site, Some(admin), shutdown.clone()));
    let http = reqwest::Client::new();
    crate::support::e2e::eventually(
        std::time::Duration::from_secs(10),
        "the console",
        || async {
            Ok(http
                .get(format!("http://{site_addr}/login"))
                .send()
                .await
                .is_ok())
        },
    )
    .await?;
    // Off, never open: an empty bearer matches nothing.
    let off = http
        .get(format!("http://{admin_addr}/admin/api/dead-letters"))
        .header("authorization", "Bearer ")
        .send()
        .await?;
    assert_eq!(off.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = off.json().await?;
    assert_eq!(body["error"], "admin_disabled", "{body}");
    let metrics = http
        .get(format!("http://{admin_addr}/metrics"))
        .send()
        .await?;
    assert_eq!(metrics.status(), StatusCode::OK);
    assert!(
        metrics
            .text()
            .await?
            .contains("console_operator_auth_total"),
        "the console's metrics"
    );
    // The website's listener serves neither.
    for path in ["/metrics", "/admin/api/dead-letters"] {
        let r = http.get(format!("http://{site_addr}{path}")).send().await?;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
    }
    shutdown.cancel();
    task.await??;
    Ok(())
}

#[tokio::test]
async fn operators_list_show_replay_and_discard_over_http() -> anyhow::Result<()> {
    let env = WorkerEnv::start().await?;
    env.apply(doc("9999")).await?;
    let hs = env.sandbox.hubspot();
    for click in ["a", "b"] {
        hs.create_contact(
            PORTAL,
            [
                ("lifecyclestage", "lead"),
                ("hs_lead_status", "NEW"),
                ("custom_impact_click_id", click),
            ],
        )?;
    }
    env.process(&env.new_events()).await;
    let mut settings = env.settings.clone();
    settings.admin_tokens = named_tokens();
    let app = admin_app(&settings);

    let (status, _) = call(&app, get("/admin/api/dead-letters", None)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = call(
        &app,
        get(
            &format!("/admin/api/dead-letters?portal={PORTAL}&reason_class=permanent&text=9999"),
            Some(TOKEN),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let list = body["dead_letters"].as_array().cloned().unwrap_or_default();
    assert_eq!(list.len(), 2);
    let (first, second) = (list[0]["id"].clone(), list[1]["id"].clone());
    let (status, body) = call(
        &app,
        get(&format!("/admin/api/dead-letters/{first}"), Some(TOKEN)),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["last_status"], 400);
    let (status, _) = call(&app, get("/admin/api/dead-letters/999999", Some(TOKEN))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = call(
        &app,
        get("/admin/api/dead-letters?reason_class=bogus", Some(TOKEN)),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = call(
        &app,
        get(
            &format!("/admin/api/replays/{}", uuid::Uuid::new_v4()),
            Some(TOKEN),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, body) = call(
        &app,
        post(
            &format!("/admin/api/dead-letters/{second}/discard"),
            json!({"reason": "test contact"}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = call(
        &app,
        post(
            &format!("/admin/api/dead-letters/{second}/discard"),
            json!({"reason": "again"}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = call(
        &app,
        post(
            "/admin/api/dead-letters/987654321/discard",
            json!({"reason": "unknown"}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    env.apply(doc("1000")).await?;
    let mut worker_settings = env.settings.clone();
    worker_settings.outcomes_poll = false;
    let worker = spawn_worker(&env, worker_settings);
    let dry = replay(
        &env,
        &app,
        "/admin/api/dead-letters/replay",
        json!({"portal": PORTAL, "dry_run": true}),
    )
    .await;
    assert_eq!(dry["results"].as_array().map(Vec::len), Some(1), "{dry}");
    assert_eq!(dry["results"][0]["outcome"], "dry_run");
    assert!(env.submissions().is_empty(), "a dry run sends nothing");
    let bulk = replay(
        &env,
        &app,
        "/admin/api/dead-letters/replay",
        json!({"portal": PORTAL}),
    )
    .await;
    assert_eq!(bulk["results"][0]["outcome"], "delivered", "{bulk}");
    assert_eq!(bulk["actor"], "admin:alice");
    assert_eq!(env.submissions().len(), 1);
    // Replayed already: refused at once, nothing queued.
    let (status, again) = call(
        &app,
        post(
            &format!("/admin/api/dead-letters/{first}/replay"),
            json!({}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{again}");
    assert_eq!(again["error"], "not_open");
    assert_eq!(env.submissions().len(), 1);
    worker.stop().await?;

    let audit: Vec<(String, String, Option<String>)> = sqlx::query_as(
        "SELECT actor, action, outcome FROM audit_log
         WHERE action IN ('dead_letter.discard', 'dead_letter.replay') ORDER BY id",
    )
    .fetch_all(&env.pool)
    .await?;
    assert_eq!(
        audit,
        [
            (
                "admin:alice".into(),
                "dead_letter.discard".into(),
                Some("discarded".into())
            ),
            (
                "admin:alice".into(),
                "dead_letter.discard".into(),
                Some("not_open".into())
            ),
            (
                "admin:alice".into(),
                "dead_letter.replay".into(),
                Some("delivered".into())
            ),
        ]
    );
    env.finish().await;
    Ok(())
}
