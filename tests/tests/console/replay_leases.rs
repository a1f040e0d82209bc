//! Replays never strand and never collide: the replay that takes a dead
//! letter holds a lease (renewed while it works); two operators at once get
//! one replay and one 409; a discard never overwrites a replay in progress;
//! a worker killed mid-replay leaves a lease that expires, and the dead
//! letter is given back and replayable. Dead letters being replayed stay
//! listed, with their state.

use std::time::Duration;

use crate::{
    admin_api::{BOB, TOKEN, named_tokens},
    support::e2e::{PORTAL, WorkerEnv, eventually, seed_contact_mappings},
};
use axum::{
    body::{Body, to_bytes},
    http::{Request, StatusCode, header},
};
use serde_json::{Value, json};
use shared::{
    broker::ReplayRequest,
    db::dead_letters::{self, DeadLetterId},
};
use tower::ServiceExt;

fn doc(program: &str) -> Value {
    json!({
        "triggers": { "contacts": { "on_create": true } },
        "mappings": { "contacts": seed_contact_mappings() },
        "impact": { "account_sid": "IRsandbox", "auth_token": "sandbox-token", "program_id": program },
    })
}

/// `n` dead letters of conversions impact.com refused (unknown program),
/// then the program fixed: the environment and the dead letters' ids.
async fn dead_letters(n: usize) -> anyhow::Result<(WorkerEnv, Vec<i64>)> {
    let env = WorkerEnv::start().await?;
    env.apply(doc("9999")).await?;
    for i in 0..n {
        env.sandbox.hubspot().create_contact(
            PORTAL,
            [
                ("lifecyclestage", "lead"),
                ("hs_lead_status", "NEW"),
                ("custom_impact_click_id", format!("click-{i}").as_str()),
            ],
        )?;
    }
    env.process(&env.new_events()).await;
    let letters: Vec<i64> = env.dead_letters().await?.iter().map(|l| l.0).collect();
    anyhow::ensure!(letters.len() == n, "{letters:?}");
    env.apply(doc("1000")).await?;
    Ok((env, letters))
}

fn admin(env: &WorkerEnv) -> axum::Router {
    let mut s = env.settings.clone();
    s.admin_tokens = named_tokens();
    console::admin::router(console::admin::AdminState::from_settings(&s))
}

async fn call(app: &axum::Router, req: Request<Body>) -> (StatusCode, Value) {
    let resp = app.clone().oneshot(req).await.expect("infallible");
    let status = resp.status();
    let bytes = to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap_or_default();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn replay(letter: i64, token: &str) -> Request<Body> {
    Request::post(format!("/admin/api/dead-letters/{letter}/replay"))
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .expect("request")
}

fn discard(letter: i64, token: &str) -> Request<Body> {
    Request::post(format!("/admin/api/dead-letters/{letter}/discard"))
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(r#"{"reason":"test data"}"#))
        .expect("request")
}

fn list(token: &str) -> Request<Body> {
    Request::get("/admin/api/dead-letters")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .expect("request")
}

async fn state_of(env: &WorkerEnv, letter: i64) -> anyhow::Result<dead_letters::DeadLetter> {
    dead_letters::get(&env.pool, DeadLetterId(letter))
        .await?
        .ok_or_else(|| anyhow::anyhow!("dead letter {letter} gone"))
}

#[tokio::test]
async fn two_operators_at_once_get_one_replay_and_a_discard_never_overwrites_it()
-> anyhow::Result<()> {
    let (env, letters) = dead_letters(6).await?;
    let app = admin(&env);
    // Alice and Bob replay the same dead letter at the same moment.
    let mut replayed = Vec::new();
    for &letter in &letters[..3] {
        let (a, b) = tokio::join!(
            call(&app, replay(letter, TOKEN)),
            call(&app, replay(letter, BOB))
        );
        let mut statuses = [a.0, b.0];
        statuses.sort();
        assert_eq!(
            statuses,
            [StatusCode::ACCEPTED, StatusCode::CONFLICT],
            "{a:?} {b:?}"
        );
        let refused = if a.0 == StatusCode::CONFLICT {
            &a.1
        } else {
            &b.1
        };
        assert_eq!(refused["error"], "already_replaying", "{refused}");
        replayed.push(letter);
    }
    // A discard and a replay at the same moment: one of them, never both.
    let mut discarded = Vec::new();
    for &letter in &letters[3..] {
        let (d, r) = tokio::join!(
            call(&app, discard(letter, BOB)),
            call(&app, replay(letter, TOKEN))
        );
        match (d.0, r.0) {
            (StatusCode::OK, StatusCode::CONFLICT) => {
                assert_eq!(r.1["error"], "not_open", "{r:?}");
                discarded.push(letter);
            }
            (StatusCode::CONFLICT, StatusCode::ACCEPTED) => {
                assert_eq!(d.1["error"], "already_replaying", "{d:?}");
                replayed.push(letter);
            }
            other => panic!("one of them must win: {other:?} {d:?} {r:?}"),
        }
    }
    // Reserved for their replay: a discard is refused, and they stay
    // listed with their state and lease.
    for &letter in &replayed {
        let (status, body) = call(&app, discard(letter, BOB)).await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert_eq!(body["error"], "already_replaying");
        assert!(
            body["message"]
                .as_str()
                .is_some_and(|m| m.contains("already being replayed")),
            "{body}"
        );
    }
    let (_, listed) = call(&app, list(TOKEN)).await;
    let listed = listed["dead_letters"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let replaying: Vec<i64> = listed
        .iter()
        .filter(|d| d["state"] == "replaying" && d["lease_expires_at"].is_string())
        .filter_map(|d| d["id"].as_i64())
        .collect();
    let mut expected = replayed.clone();
    expected.sort();
    assert_eq!(replaying, expected, "{listed:?}");

    // A worker carries the requests out: each dead letter delivered once.
    let mut settings = env.settings.clone();
    settings.outcomes_poll = false;
    let worker = crate::support::e2e::spawn_worker(&env, settings);
    let pool = env.pool.clone();
    eventually(Duration::from_secs(30), "the replays", || async {
        let all = shared::db::replays::list(&pool, None, 100).await?;
        Ok(all.len() == replayed.len() && all.iter().all(|r| r.finished()))
    })
    .await?;
    worker.stop().await?;
    for &letter in &replayed {
        assert_eq!(state_of(&env, letter).await?.state, "replayed");
        let (status, body) = call(&app, discard(letter, BOB)).await;
        assert_eq!(
            (status, &body["error"]),
            (StatusCode::CONFLICT, &json!("not_open"))
        );
    }
    for &letter in &discarded {
        assert_eq!(state_of(&env, letter).await?.state, "discarded");
    }
    assert_eq!(
        env.submissions().len(),
        replayed.len(),
        "each delivered once"
    );
    env.finish().await;
    Ok(())
}

#[tokio::test]
async fn a_worker_killed_mid_replay_leaves_a_lease_that_expires_and_the_letter_replays_again()
-> anyhow::Result<()> {
    let (env, letters) = dead_letters(1).await?;
    let letter = letters[0];
    let app = admin(&env);
    // The worker that will die: leases of 2 s, renewed while it works;
    // impact.com answers only after a minute.
    let mut settings = env.settings.clone();
    settings.replay_lease_secs = 2;
    let doomed = worker::Worker::connect(&settings).await?;
    env.sandbox.impact().set_latency(Duration::from_secs(60));
    let id = shared::db::replays::insert(
        &env.pool,
        "admin:alice",
        None,
        &[letter],
        shared::broker::ReplayMode::default(),
    )
    .await?;
    let task = tokio::spawn(async move {
        worker::runtime::replay_requests::carry_out(&doomed, ReplayRequest { replay_id: id }, 1000)
            .await
    });
    let holder = shared::db::replays::lease_holder(id);
    eventually(Duration::from_secs(10), "the worker's lease", || async {
        Ok(state_of(&env, letter).await?.lease_holder.as_deref() == Some(holder.as_str()))
    })
    .await?;
    // Renewed while it works: still held after longer than one lease.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let held = state_of(&env, letter).await?;
    assert_eq!(held.state, "replaying");
    assert!(
        held.lease_expires_at
            .is_some_and(|t| t > chrono::Utc::now()),
        "{held:?}"
    );

    // Killed: nothing renews the lease any more.
    task.abort();
    let _ = task.await;
    let (status, body) = call(&app, discard(letter, BOB)).await;
    assert_eq!(
        (status, &body["error"]),
        (StatusCode::CONFLICT, &json!("already_replaying"))
    );
    let (status, _) = call(&app, replay(letter, BOB)).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (_, listed) = call(&app, list(TOKEN)).await;
    assert_eq!(listed["dead_letters"][0]["state"], "replaying", "{listed}");

    // The lease expires; the reaper gives the dead letter back.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(worker::dlq::lease::reap_all(&env.pool).await?, 1);
    let back = state_of(&env, letter).await?;
    assert_eq!((back.state.as_str(), back.lease_holder), ("open", None));
    let reaped: (String, Option<String>) = sqlx::query_as(
        "SELECT actor, outcome FROM audit_log WHERE action = 'dead_letter.lease_expired'",
    )
    .fetch_one(&env.pool)
    .await?;
    assert_eq!(reaped, ("worker:lease-reaper".into(), Some("open".into())));

    // Replayable again, and delivered once.
    env.sandbox.impact().set_latency(Duration::ZERO);
    let (status, body) = call(&app, replay(letter, BOB)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let again = body["replay_id"].as_str().unwrap_or_default().parse()?;
    worker::runtime::replay_requests::carry_out(
        &env.worker,
        ReplayRequest { replay_id: again },
        1000,
    )
    .await?;
    let done = shared::db::replays::get(&env.pool, again)
        .await?
        .expect("stored");
    assert_eq!(done.results[0]["outcome"], "delivered", "{done:?}");
    assert_eq!(state_of(&env, letter).await?.state, "replayed");
    assert_eq!(env.submissions().len(), 1);
    env.finish().await;
    Ok(())
}

#[tokio::test]
async fn an_expired_lease_is_taken_over_without_waiting_for_the_reaper() -> anyhow::Result<()> {
    let (env, letters) = dead_letters(1).await?;
    let letter = DeadLetterId(letters[0]);
    let app = admin(&env);
    // A replay took it and died at once (no reaper runs in this test).
    let taken = shared::db::dead_letter_leases::claim(
        &env.pool,
        letter,
        "cli:gone:1",
        Duration::from_secs(1),
        None,
    )
    .await?;
    assert!(taken.is_ok(), "{taken:?}");
    let (status, _) = call(&app, discard(letter.0, BOB)).await;
    assert_eq!(status, StatusCode::CONFLICT);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // Expired: the next replay takes it over (one compare-and-set).
    let (status, body) = call(&app, replay(letter.0, TOKEN)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let held = state_of(&env, letter.0).await?;
    assert!(
        held.lease_holder
            .as_deref()
            .is_some_and(|h| h.starts_with("replay:")),
        "{held:?}"
    );
    // The dead holder cannot end what it no longer holds.
    let ended = shared::db::dead_letter_leases::finish(
        &env.pool,
        letter,
        "cli:gone:1",
        domain::status::DeadLetterState::Replayed,
        "cli:gone",
        "late",
    )
    .await?;
    assert!(!ended);
    assert_eq!(state_of(&env, letter.0).await?.state, "replaying");
    env.finish().await;
    Ok(())
}
