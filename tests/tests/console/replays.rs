//! Replays through the broker: the console records a request and publishes
//! it; a worker running in the test carries it out exactly once, and a
//! request redelivered after it is done is acknowledged without running again.

use std::time::Duration;

use crate::support::{
    e2e::{PORTAL, WorkerEnv, eventually, seed_contact_mappings, spawn_worker},
    harness,
    website::replay_finished,
};
use axum::{
    body::{Body, to_bytes},
    http::{Request, StatusCode},
};
use secrecy::SecretString;
use serde_json::{Value, json};
use shared::broker::{Publisher, ReplayRequest, replay};
use tower::ServiceExt;

const TOKEN: &str = "operator-token-0123456789abcdef-0123";

fn doc(program: &str) -> Value {
    json!({
        "triggers": { "contacts": { "on_create": true } },
        "mappings": { "contacts": seed_contact_mappings() },
        "impact": { "account_sid": "IRsandbox", "auth_token": "sandbox-token", "program_id": program },
    })
}

/// One dead letter of a conversion impact.com refused (unknown program),
/// then the program fixed: the environment and the dead letter's id.
async fn one_dead_letter() -> anyhow::Result<(WorkerEnv, i64)> {
    let env = WorkerEnv::start().await?;
    env.apply(doc("9999")).await?;
    env.sandbox.hubspot().create_contact(
        PORTAL,
        [
            ("lifecyclestage", "lead"),
            ("hs_lead_status", "NEW"),
            ("custom_impact_click_id", "replayed-click"),
        ],
    )?;
    env.process(&env.new_events()).await;
    let letters = env.dead_letters().await?;
    anyhow::ensure!(letters.len() == 1, "{letters:?}");
    env.apply(doc("1000")).await?;
    Ok((env, letters[0].0))
}

async fn request_replay(app: &axum::Router, id: i64) -> anyhow::Result<uuid::Uuid> {
    let req = Request::post(format!("/admin/api/dead-letters/{id}/replay"))
        .header("authorization", format!("Bearer {TOKEN}"))
        .body(Body::empty())?;
    let resp = app.clone().oneshot(req).await?;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let body: Value = serde_json::from_slice(&to_bytes(resp.into_body(), usize::MAX).await?)?;
    Ok(body["replay_id"].as_str().unwrap_or_default().parse()?)
}

#[tokio::test]
async fn a_replay_request_goes_through_the_broker_to_a_worker_and_delivers_once()
-> anyhow::Result<()> {
    let (env, letter) = one_dead_letter().await?;
    let mut settings = env.settings.clone();
    settings.admin_token = Some(SecretString::from(TOKEN));
    settings.outcomes_poll = false;
    let app = console::admin::router(console::admin::AdminState::from_settings(&settings));

    // Queued while no worker runs: the request waits in the broker.
    let id = request_replay(&app, letter).await?;
    let row = shared::db::replays::get(&env.pool, id).await?;
    assert_eq!(row.map(|r| r.status), Some("queued".into()));
    assert!(env.submissions().is_empty(), "the console sends nothing");

    let worker = spawn_worker(&env, settings.clone());
    let done = replay_finished(&env.pool, id).await?;
    assert_eq!(done.status, "done");
    assert_eq!(done.dead_letter_ids, [letter]);
    assert_eq!(done.results[0]["outcome"], "delivered", "{done:?}");
    assert!(done.started_at.is_some() && done.finished_at.is_some());
    assert_eq!(env.submissions().len(), 1);
    assert_eq!(env.submitted("ClickId"), ["replayed-click"]);

    // The same request again (a redelivery): acknowledged, not re-run.
    let topology = worker::topology(&settings)?;
    let queue = topology.replay_queue();
    let publisher = Publisher::new(&settings.amqp_url, "test", topology, 1);
    replay::publish(
        &publisher,
        &ReplayRequest { replay_id: id },
        Duration::from_secs(5),
    )
    .await?;
    let (_conn, ch) = harness::broker_channel().await?;
    eventually(
        Duration::from_secs(10),
        "the redelivery consumed",
        || async { Ok(harness::queue_len(&ch, &queue).await? == 0) },
    )
    .await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    worker.stop().await?;
    publisher.close().await;
    let after = shared::db::replays::get(&env.pool, id).await?;
    assert_eq!(after.as_ref(), Some(&done), "the request is untouched");
    assert_eq!(env.submissions().len(), 1, "delivered once");

    // `worker dlq replays [ID]` shows it.
    let mut out = Vec::new();
    let cmd = worker::cli::dlq::DlqCommand::Replays { id: Some(id) };
    worker::cli::dlq::run(&env.settings, cmd, &mut out).await?;
    let shown: Value = serde_json::from_slice(&out)?;
    assert_eq!(shown[0]["status"], "done", "{shown}");
    assert_eq!(shown[0]["results"][0]["outcome"], "delivered");

    // Carried out directly too: a finished request is never run again.
    worker::runtime::replay_requests::carry_out(&env.worker, ReplayRequest { replay_id: id }, 1000)
        .await?;
    assert_eq!(shared::db::replays::get(&env.pool, id).await?, Some(done));
    env.finish().await;
    Ok(())
}

#[tokio::test]
async fn a_portal_scoped_request_never_replays_another_portals_dead_letter() -> anyhow::Result<()> {
    let (env, letter) = one_dead_letter().await?;
    // Portal 1002 exists (a replay request's portal is a foreign key).
    sqlx::query("INSERT INTO portals (portal_id, hubspot_auth_kind) VALUES (1002, 'private_app')")
        .execute(&env.pool)
        .await?;
    // As the website would ask for portal 1002 (the check there is bypassed).
    let id = shared::db::replays::insert(
        &env.pool,
        "website:portal:1002",
        Some(1002),
        &[letter],
        shared::broker::ReplayMode::default(),
    )
    .await?;
    worker::runtime::replay_requests::carry_out(&env.worker, ReplayRequest { replay_id: id }, 1000)
        .await?;
    let row = shared::db::replays::get(&env.pool, id)
        .await?
        .expect("stored");
    assert_eq!(row.status, "done");
    assert_eq!(row.results[0]["outcome"], "not_found");
    assert!(env.submissions().is_empty());
    env.finish().await;
    Ok(())
}

#[tokio::test]
async fn the_website_api_requests_a_replay_and_shows_its_progress() -> anyhow::Result<()> {
    use crate::support::website::{Auth, WebEnv};
    use axum::http::Method;
    let w = WebEnv::start().await?;
    let s = w.install(PORTAL).await?;
    let other = w.install(1002).await?;
    let base = format!("/api/v1/portals/{PORTAL}");
    let put = |path: &'static str, body: Value| {
        let (w, s, base) = (&w, &s, &base);
        async move {
            let a = w
                .api(
                    Method::PUT,
                    &format!("{base}/{path}"),
                    Auth::Session(s),
                    Some(body),
                )
                .await;
            assert!(a.status.is_success(), "{path}: {} {}", a.status, a.body);
        }
    };
    let settings = |program: &str| json!({"account_sid": "IRsandbox", "auth_token": "sandbox-token", "program_id": program});
    // Program 9999 exists when the settings are saved (they are checked
    // with impact.com), then is gone: its conversions are refused.
    let account = |programs: &[&str]| sandbox::ImpactAccount {
        account_sid: "IRsandbox".into(),
        auth_token: "sandbox-token".into(),
        program_ids: programs.iter().map(|p| (*p).to_owned()).collect(),
    };
    w.env
        .sandbox
        .impact()
        .add_account(account(&["1000", "9999"]));
    put("settings", settings("9999")).await;
    w.env.sandbox.impact().add_account(account(&["1000"]));
    put("triggers", json!({"contacts": {"on_create": true}})).await;
    put("mappings", json!({"contacts": seed_contact_mappings()})).await;
    w.env.sandbox.hubspot().create_contact(
        PORTAL,
        [
            ("lifecyclestage", "lead"),
            ("hs_lead_status", "NEW"),
            ("custom_impact_click_id", "api-click"),
        ],
    )?;
    w.env.worker.portals.clear().await;
    w.env.process(&w.env.new_events()).await;
    let letter = w.env.dead_letters().await?[0].0;
    put("settings", settings("1000")).await;

    let path = format!("{base}/dead-letters/{letter}/replay");
    let asked = w.api(Method::POST, &path, Auth::Session(&s), None).await;
    assert_eq!(asked.status, StatusCode::ACCEPTED, "{}", asked.body);
    assert_eq!(asked.json()["status"], "requested");
    let id = asked.json()["replay_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let status_path = format!("{base}/replays/{id}");
    let queued = w
        .api(Method::GET, &status_path, Auth::Session(&s), None)
        .await;
    assert_eq!(queued.json()["status"], "queued", "{}", queued.body);
    // Another portal's session learns nothing about it.
    let theirs = format!("/api/v1/portals/1002/replays/{id}");
    let hidden = w
        .api(Method::GET, &theirs, Auth::Session(&other), None)
        .await;
    assert_eq!(hidden.status, StatusCode::NOT_FOUND, "{}", hidden.body);

    // The worker started after the settings change: its cache may be stale.
    w.env.worker.portals.clear().await;
    w.carry_out_replays().await?;
    let done = w
        .api(Method::GET, &status_path, Auth::Session(&s), None)
        .await;
    assert_eq!(done.json()["status"], "done", "{}", done.body);
    let outcome = &done.json()["results"][0]["outcome"];
    assert_eq!(outcome, "delivered", "{}", done.body);
    assert_eq!(w.env.submitted("ClickId"), ["api-click"]);
    let activity = w
        .api(
            Method::GET,
            &format!("{base}/activity"),
            Auth::Session(&s),
            None,
        )
        .await;
    assert_eq!(activity.json()["replays"][0]["id"], id.as_str());
    w.finish().await;
    Ok(())
}
