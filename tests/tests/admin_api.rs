//! The admin HTTP API (`/admin/api/...`): bearer token, dead-letter list,
//! show, replay and discard, through the router without a socket.

use axum::{
    body::{Body, to_bytes},
    http::{Request, StatusCode},
};
use secrecy::SecretString;
use serde_json::{Value, json};
use shared::config::Settings;
use tests::e2e::{PORTAL, WorkerEnv, seed_contact_mappings};
use tower::ServiceExt;

const TOKEN: &str = "operator-token";

fn ingest_state() -> ingest::AppState {
    let mut s = Settings::defaults();
    s.amqp_url = "amqp://guest:guest@127.0.0.1:1/%2f".into();
    s.hubspot_client_secret = Some(SecretString::from("secret"));
    ingest::AppState::from_settings(&s).expect("valid settings")
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
        .header("x-operator", "alice")
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

#[tokio::test]
async fn without_a_token_the_admin_api_is_closed() {
    let app = ingest::app(ingest_state());
    let (status, body) = call(&app, get("/admin/api/dead-letters", Some("x"))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "admin_disabled");

    // A token but no usable store (no encryption key): 503, clearly.
    let mut s = Settings::defaults();
    s.admin_token = Some(SecretString::from(TOKEN));
    let admin = ingest::admin::AdminState::from_settings(&s);
    let app = ingest::app_with_admin(ingest_state(), admin);
    let (status, body) = call(&app, get("/admin/api/dead-letters", Some(TOKEN))).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"], "store_unavailable");
    let (status, _) = call(&app, get("/admin/api/dead-letters", Some("wrong"))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
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
    let admin = ingest::admin::AdminState::with_worker(TOKEN, env.worker.clone(), 1000);
    let app = ingest::app_with_admin(ingest_state(), admin);

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

    env.apply(doc("1000")).await?;
    let (status, body) = call(
        &app,
        post(
            "/admin/api/dead-letters/replay",
            json!({"portal": PORTAL, "dry_run": true}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["replayed"], 1);
    assert!(env.submissions().is_empty(), "a dry run sends nothing");
    let (status, body) = call(
        &app,
        post("/admin/api/dead-letters/replay", json!({"portal": PORTAL})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["delivered"], 1, "{body}");
    assert_eq!(env.submissions().len(), 1);
    let (_, body) = call(
        &app,
        post(
            &format!("/admin/api/dead-letters/{first}/replay"),
            json!({}),
        ),
    )
    .await;
    assert_eq!(body["outcome"], "not_open");
    assert_eq!(env.submissions().len(), 1);

    let audit: Vec<(String, String, Option<String>)> = sqlx::query_as(
        "SELECT actor, action, outcome FROM audit_log WHERE action LIKE 'dead_letter.%' ORDER BY id",
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
