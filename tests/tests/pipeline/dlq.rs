//! Retries, the dead-letter store and operator replay, end to end against
//! RabbitMQ, PostgreSQL and the sandbox.

use std::time::{Duration, Instant};

use crate::support::{
    e2e::{PORTAL, WorkerEnv, eventually, seed_contact_mappings, spawn_worker},
    harness,
};
use futures::StreamExt;
use lapin::{
    options::{BasicConsumeOptions, BasicNackOptions},
    types::FieldTable,
};
use sandbox::{ObjectType, impact::Fault, impact::FaultPlan};
use serde_json::json;
use shared::db::dead_letters::{self, DeadLetterId, Filter};
use tokio_util::sync::CancellationToken;
use worker::{
    EventResult, MessageOutcome,
    dlq::replay::{ReplayMode, ReplayOutcome, replay_many, replay_one},
};

fn contacts_doc(program: &str) -> serde_json::Value {
    json!({
        "triggers": { "contacts": { "on_create": true, "on_change": ["city"] } },
        "mappings": { "contacts": seed_contact_mappings() },
        "impact": { "account_sid": "IRsandbox", "auth_token": "sandbox-token", "program_id": program },
    })
}

fn contact(click: &str) -> Vec<(&'static str, String)> {
    vec![
        ("lifecyclestage", "lead".into()),
        ("hs_lead_status", "NEW".into()),
        ("city", "Paris".into()),
        ("custom_impact_click_id", click.into()),
    ]
}

fn open_ids(rows: &[(i64, String, String, Option<i32>)]) -> Vec<DeadLetterId> {
    rows.iter().map(|r| DeadLetterId(r.0)).collect()
}

#[tokio::test]
async fn impact_down_for_a_while_is_retried_and_delivered_once() -> anyhow::Result<()> {
    let env = WorkerEnv::start().await?;
    env.apply(contacts_doc("1000")).await?;
    let plan = FaultPlan {
        server_error: 1.0,
        ..Default::default()
    };
    env.sandbox
        .impact()
        .set_faults_for(plan, Duration::from_millis(2500));
    let running = spawn_worker(&env, env.settings.clone());
    env.sandbox
        .hubspot()
        .create_contact(PORTAL, contact("outage"))?;
    env.publish(&env.new_events()).await?;
    env.sandbox
        .impact()
        .wait_for_submissions(1, Duration::from_secs(30))
        .await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(env.submissions().len(), 1);
    let rows = env.conversions().await?;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].2, "delivered");
    assert!(rows[0].3 >= 2, "failed attempts are counted: {rows:?}");
    assert!(env.dead_letters().await?.is_empty());
    running.stop().await?;
    env.finish().await;
    Ok(())
}

#[tokio::test]
async fn short_blips_are_retried_in_process() -> anyhow::Result<()> {
    let env = WorkerEnv::start().await?;
    env.apply(contacts_doc("1000")).await?;
    let mut settings = env.settings.clone();
    settings.retry_inprocess_attempts = 3;
    let w = worker::Worker::connect(&settings).await?;
    env.sandbox
        .impact()
        .fail_next([Fault::ServerError(503), Fault::ServerError(502)]);
    env.sandbox
        .hubspot()
        .create_contact(PORTAL, contact("blip"))?;
    let body = serde_json::to_vec(&env.new_events())?;
    let outcome = worker::process_message(&w, &body, worker::MessageMeta::default()).await;
    let MessageOutcome::Done(results) = outcome else {
        panic!("{outcome:?}")
    };
    assert!(
        matches!(results[0], EventResult::Delivered { .. }),
        "{results:?}"
    );
    assert_eq!(env.submissions().len(), 1);
    env.finish().await;
    Ok(())
}

#[tokio::test]
async fn exhausted_retries_reach_the_store_after_the_schedule() -> anyhow::Result<()> {
    let env = WorkerEnv::start().await?;
    env.apply(contacts_doc("1000")).await?;
    env.sandbox.impact().set_faults(FaultPlan {
        server_error: 1.0,
        ..Default::default()
    });
    let mut settings = env.settings.clone();
    settings.retry_schedule = "1s,2s".into();
    let running = spawn_worker(&env, settings);
    env.sandbox
        .hubspot()
        .create_contact(PORTAL, contact("never"))?;
    let started = Instant::now();
    env.publish(&env.new_events()).await?;
    eventually(Duration::from_secs(30), "a dead letter", || async {
        Ok(!env.dead_letters().await?.is_empty())
    })
    .await?;
    // Both ladder steps were waited out (TTLs of 1 s and 2 s).
    assert!(started.elapsed() >= Duration::from_millis(2900));
    let letters = env.dead_letters().await?;
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0].1, "exhausted");
    assert_eq!(letters[0].2, "impact_unavailable");
    assert_eq!(letters[0].3, Some(503));
    let stored = dead_letters::get(&env.pool, DeadLetterId(letters[0].0))
        .await?
        .expect("stored");
    assert_eq!(stored.attempts, 3, "first try and two retries");
    assert_eq!(stored.portal_id, Some(PORTAL as i64));
    running.stop().await?;

    // impact.com is back: the replay delivers it once.
    env.sandbox.impact().clear_faults();
    let r = replay_one(&env.worker, stored.id, ReplayMode::default(), "test").await?;
    assert_eq!(r.outcome, ReplayOutcome::Delivered, "{r:?}");
    assert_eq!(env.submissions().len(), 1);
    env.finish().await;
    Ok(())
}

#[tokio::test]
async fn a_400_is_dead_lettered_then_replayed_after_the_fix_and_delivered_once()
-> anyhow::Result<()> {
    let env = WorkerEnv::start().await?;
    // Program 9999 does not exist in the account: impact.com answers 400.
    env.apply(contacts_doc("9999")).await?;
    env.sandbox
        .hubspot()
        .create_contact(PORTAL, contact("bad-campaign"))?;
    let outcome = env.process(&env.new_events()).await;
    let MessageOutcome::Done(results) = outcome else {
        panic!("{outcome:?}")
    };
    assert!(matches!(&results[0], EventResult::Failed(f) if f.reason == "impact_rejected"));
    let letters = env.dead_letters().await?;
    assert_eq!(letters.len(), 1);
    assert_eq!(
        (letters[0].1.as_str(), letters[0].3),
        ("permanent", Some(400))
    );
    let stored = dead_letters::get(&env.pool, DeadLetterId(letters[0].0))
        .await?
        .expect("stored");
    assert!(
        stored
            .last_error
            .as_deref()
            .unwrap_or("")
            .contains("Campaign 9999")
    );
    let payload = stored.payload.clone().expect("payload kept");
    assert!(payload.to_string().contains("9999"), "{payload}");
    assert!(stored.fetched_object.is_some());
    assert!(stored.conversion_id.is_some());

    // A dry run changes nothing and shows the fixed payload once fixed.
    env.apply(contacts_doc("1000")).await?;
    let dry = ReplayMode {
        dry_run: true,
        ..Default::default()
    };
    let r = replay_one(&env.worker, stored.id, dry, "test").await?;
    assert_eq!(r.outcome, ReplayOutcome::DryRun);
    assert!(r.preview.expect("preview").to_string().contains("\"1000\""));
    assert!(env.submissions().is_empty());

    let r = replay_one(&env.worker, stored.id, ReplayMode::default(), "test").await?;
    assert_eq!(r.outcome, ReplayOutcome::Delivered, "{r:?}");
    // Replaying again: the dead letter is no longer open.
    let again = replay_one(&env.worker, stored.id, ReplayMode::default(), "test").await?;
    assert_eq!(again.outcome, ReplayOutcome::NotOpen);
    let subs = env.submissions();
    assert_eq!(subs.len(), 1);
    assert_eq!(subs[0].param("CampaignId"), Some("1000"));
    assert!(env.dead_letters().await?.is_empty());
    let audit: Vec<(String, String, Option<String>)> =
        sqlx::query_as("SELECT actor, action, outcome FROM audit_log WHERE action LIKE 'dead_letter.%' ORDER BY id")
            .fetch_all(&env.pool)
            .await?;
    assert_eq!(
        audit,
        [(
            "test".into(),
            "dead_letter.replay".into(),
            Some("delivered".into())
        )]
    );
    env.finish().await;
    Ok(())
}

#[tokio::test]
async fn replaying_a_delivered_conversion_is_refused_without_force() -> anyhow::Result<()> {
    let env = WorkerEnv::start().await?;
    env.apply(contacts_doc("9999")).await?;
    let hs = env.sandbox.hubspot();
    let id = hs.create_contact(PORTAL, contact("twice"))?;
    env.process(&env.new_events()).await;
    // A second event of the same contact maps to the same conversion key.
    hs.set_property(PORTAL, ObjectType::Contacts, id, "city", "Lyon")?;
    env.process(&env.new_events()).await;
    let letters = open_ids(&env.dead_letters().await?);
    assert_eq!(letters.len(), 2);

    env.apply(contacts_doc("1000")).await?;
    let first = replay_one(&env.worker, letters[0], ReplayMode::default(), "test").await?;
    assert_eq!(first.outcome, ReplayOutcome::Delivered, "{first:?}");
    let refused = replay_one(&env.worker, letters[1], ReplayMode::default(), "test").await?;
    assert_eq!(
        refused.outcome,
        ReplayOutcome::AlreadyDelivered,
        "{refused:?}"
    );
    let as_sent = ReplayMode {
        as_sent: true,
        ..Default::default()
    };
    let refused = replay_one(&env.worker, letters[1], as_sent, "test").await?;
    assert_eq!(refused.outcome, ReplayOutcome::AlreadyDelivered);
    assert_eq!(env.submissions().len(), 1, "nothing sent twice");
    // Still open: an operator may discard it, or force it.
    assert_eq!(open_ids(&env.dead_letters().await?), [letters[1]]);

    let force = ReplayMode {
        force: true,
        ..Default::default()
    };
    let forced = replay_one(&env.worker, letters[1], force, "test").await?;
    assert_eq!(forced.outcome, ReplayOutcome::Delivered, "{forced:?}");
    assert_eq!(env.submissions().len(), 2, "--force sends it again");
    assert!(env.dead_letters().await?.is_empty());
    env.finish().await;
    Ok(())
}

#[tokio::test]
async fn discard_needs_an_open_dead_letter_and_is_audited() -> anyhow::Result<()> {
    let env = WorkerEnv::start().await?;
    env.apply(contacts_doc("9999")).await?;
    env.sandbox
        .hubspot()
        .create_contact(PORTAL, contact("discard-me"))?;
    env.process(&env.new_events()).await;
    let id = open_ids(&env.dead_letters().await?)[0];
    let filter = Filter {
        portal: Some(PORTAL as i64),
        text: Some("campaign 9999".into()),
        ..Default::default()
    };
    assert_eq!(dead_letters::list(&env.pool, &filter).await?.len(), 1);
    let none = Filter {
        object_type: Some("deals".into()),
        ..Default::default()
    };
    assert!(dead_letters::list(&env.pool, &none).await?.is_empty());

    use worker::dlq::ops::{Discarded, discard};
    assert_eq!(
        discard(&env.pool, id, "ops", "test data").await?,
        Discarded::Discarded
    );
    assert_eq!(
        discard(&env.pool, id, "ops", "again").await?,
        Discarded::NotOpen {
            state: "discarded".into()
        }
    );
    let r = replay_one(&env.worker, id, ReplayMode::default(), "ops").await?;
    assert_eq!(r.outcome, ReplayOutcome::NotOpen);
    let stored = dead_letters::get(&env.pool, id).await?.expect("kept");
    assert_eq!(stored.state, "discarded");
    assert_eq!(stored.resolution.as_deref(), Some("test data"));
    let outcomes: Vec<(String, Option<String>)> =
        sqlx::query_as("SELECT action, outcome FROM audit_log WHERE actor = 'ops' ORDER BY id")
            .fetch_all(&env.pool)
            .await?;
    assert_eq!(
        outcomes,
        [
            ("dead_letter.discard".into(), Some("discarded".into())),
            ("dead_letter.discard".into(), Some("not_open".into()))
        ]
    );
    env.finish().await;
    Ok(())
}

#[tokio::test]
async fn a_poison_message_lands_in_the_store() -> anyhow::Result<()> {
    let mut env = WorkerEnv::start().await?;
    env.settings.delivery_limit = 2;
    let settings = env.settings.clone();
    let topology = worker::topology(&settings)?;
    // Only the sink runs: a "worker" that crashes on the message is played
    // by a consumer that requeues it every time.
    let shutdown = CancellationToken::new();
    let sink = tokio::spawn(worker::runtime::dead_letter_sink::run(
        env.worker.clone(),
        settings.amqp_url.clone(),
        topology.clone(),
        shutdown.clone(),
    ));
    let (conn, ch) = harness::broker_channel().await?;
    topology.declare(&conn).await?;
    env.sandbox
        .hubspot()
        .create_contact(PORTAL, contact("poison"))?;
    env.publish(&env.new_events()).await?;
    let mut crashing = ch
        .basic_consume(
            topology.work_queue().as_str().into(),
            "crashing".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let requeue = BasicNackOptions {
        requeue: true,
        ..Default::default()
    };
    let nacking = tokio::spawn(async move {
        while let Some(Ok(d)) = crashing.next().await {
            let _ = d.acker.nack(requeue).await;
        }
    });
    eventually(Duration::from_secs(20), "a poison dead letter", || async {
        Ok(!env.dead_letters().await?.is_empty())
    })
    .await?;
    nacking.abort();
    let letters = env.dead_letters().await?;
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0].1, "poison");
    let stored = dead_letters::get(&env.pool, DeadLetterId(letters[0].0))
        .await?
        .expect("stored");
    assert!(
        stored
            .last_error
            .as_deref()
            .unwrap_or("")
            .contains("delivery limit"),
        "{stored:?}"
    );
    assert_eq!(stored.portal_id, Some(PORTAL as i64));
    assert_eq!(stored.object_type.as_deref(), Some("contacts"));

    // Once the bug is fixed, the replay delivers it.
    env.apply(contacts_doc("1000")).await?;
    let r = replay_one(&env.worker, stored.id, ReplayMode::default(), "test").await?;
    assert_eq!(r.outcome, ReplayOutcome::Delivered, "{r:?}");
    shutdown.cancel();
    let _ = sink.await;
    env.finish().await;
    Ok(())
}

#[tokio::test]
async fn bulk_replay_during_live_traffic_sends_nothing_twice() -> anyhow::Result<()> {
    let env = WorkerEnv::start().await?;
    env.apply(contacts_doc("9999")).await?;
    let hs = env.sandbox.hubspot();
    let mut ids = Vec::new();
    for i in 0..8 {
        ids.push(hs.create_contact(PORTAL, contact(&format!("bulk-{i}")))?);
    }
    env.process(&env.new_events()).await;
    let letters = open_ids(&env.dead_letters().await?);
    assert_eq!(letters.len(), 8);

    env.apply(contacts_doc("1000")).await?;
    let running = spawn_worker(&env, env.settings.clone());
    // Live traffic for the same contacts (same conversion keys) while two
    // operators replay everything at once.
    for id in &ids {
        hs.set_property(PORTAL, ObjectType::Contacts, *id, "city", "Nice")?;
    }
    let live = env.new_events();
    let (a, b, published) = tokio::join!(
        replay_many(
            &env.worker,
            &letters,
            ReplayMode::default(),
            "op-a",
            1000,
            |_| {}
        ),
        replay_many(
            &env.worker,
            &letters,
            ReplayMode::default(),
            "op-b",
            1000,
            |_| {}
        ),
        env.publish(&live),
    );
    published?;
    let (a, b) = (a?, b?);
    env.sandbox
        .impact()
        .wait_for_submissions(8, Duration::from_secs(30))
        .await?;
    eventually(
        Duration::from_secs(20),
        "every conversion delivered",
        || async { Ok(env.conversions().await?.iter().all(|c| c.2 == "delivered")) },
    )
    .await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let subs = env.submissions();
    assert_eq!(subs.len(), 8, "one submission per conversion");
    let mut orders: Vec<_> = subs.iter().filter_map(|s| s.param("OrderId")).collect();
    orders.sort_unstable();
    orders.dedup();
    assert_eq!(orders.len(), 8);
    let mut delivered: Vec<_> = a
        .iter()
        .chain(&b)
        .filter(|r| r.outcome == ReplayOutcome::Delivered)
        .map(|r| r.id)
        .collect();
    let count = delivered.len();
    delivered.sort_unstable_by_key(|id| id.0);
    delivered.dedup();
    assert_eq!(
        delivered.len(),
        count,
        "no dead letter delivered by both operators"
    );
    running.stop().await?;
    env.finish().await;
    Ok(())
}

#[tokio::test]
async fn refused_credentials_are_flagged_and_replayed_once_fixed() -> anyhow::Result<()> {
    let env = WorkerEnv::start().await?;
    let mut doc = contacts_doc("1000");
    doc["impact"]["auth_token"] = json!("wrong-token");
    env.apply(doc).await?;
    env.sandbox
        .hubspot()
        .create_contact(PORTAL, contact("creds"))?;
    env.process(&env.new_events()).await;
    let letters = env.dead_letters().await?;
    assert_eq!(letters.len(), 1);
    assert_eq!(
        (letters[0].2.as_str(), letters[0].3),
        ("impact_auth", Some(401))
    );
    let creds = || async {
        sqlx::query_scalar::<_, String>("SELECT credentials_status FROM portals")
            .fetch_one(&env.pool)
            .await
    };
    assert_eq!(creds().await?, "failing");

    env.apply(contacts_doc("1000")).await?;
    let r = replay_one(
        &env.worker,
        DeadLetterId(letters[0].0),
        ReplayMode::default(),
        "test",
    )
    .await?;
    assert_eq!(r.outcome, ReplayOutcome::Delivered, "{r:?}");
    assert_eq!(creds().await?, "ok");
    assert_eq!(env.submissions().len(), 1);
    env.finish().await;
    Ok(())
}
