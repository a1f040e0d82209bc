//! The worker process against real RabbitMQ: consuming, acking after
//! commit, retries through the delay queues, redelivery after a crash,
//! configuration changes via NOTIFY, graceful shutdown, and the whole
//! pipeline from a HubSpot webhook through ingest.

use std::time::Duration;

use crate::support::{
    e2e::{PORTAL, WorkerEnv, eventually, new_lead, seed_contact_mappings, spawn_worker},
    harness::{self, TcpProxy},
};
use sandbox::{WebhookTarget, impact::Fault};
use serde_json::json;

fn contacts_doc() -> serde_json::Value {
    json!({
        "triggers": { "contacts": { "on_create": true, "on_change": ["lifecyclestage"] } },
        "mappings": { "contacts": seed_contact_mappings() }
    })
}

#[tokio::test]
async fn consumes_delivers_and_acks_after_commit() -> anyhow::Result<()> {
    let env = WorkerEnv::start().await?;
    env.apply(contacts_doc()).await?;
    let running = spawn_worker(&env, env.settings.clone());
    let hs = env.sandbox.hubspot();
    for i in 0..5 {
        hs.create_contact(PORTAL, new_lead(&format!("click-{i}")))?;
    }
    let events = env.new_events();
    // Every event once, then the whole batch again (a repeated delivery).
    env.publish(&events).await?;
    env.publish(&events).await?;
    env.sandbox
        .impact()
        .wait_for_submissions(5, Duration::from_secs(20))
        .await?;
    let (_c, ch) = harness::broker_channel().await?;
    let work = worker::topology(&env.settings)?.work_queue();
    eventually(Duration::from_secs(10), "an empty work queue", || {
        let ch = ch.clone();
        let work = work.clone();
        async move { Ok(harness::queue_len(&ch, &work).await? == 0) }
    })
    .await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(env.submissions().len(), 5);
    assert_eq!(env.conversions().await?.len(), 5);

    running.shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), running.task).await???;
    env.finish().await;
    Ok(())
}

#[tokio::test]
async fn transient_failures_come_back_through_the_delay_queue() -> anyhow::Result<()> {
    let env = WorkerEnv::start().await?;
    env.apply(contacts_doc()).await?;
    let running = spawn_worker(&env, env.settings.clone());
    env.sandbox.impact().fail_next([Fault::ServerError(503)]);
    env.sandbox
        .hubspot()
        .create_contact(PORTAL, new_lead("retry-me"))?;
    env.publish(&env.new_events()).await?;
    env.sandbox
        .impact()
        .wait_for_submissions(1, Duration::from_secs(20))
        .await?;
    eventually(Duration::from_secs(5), "a delivered conversion", || async {
        Ok(env
            .conversions()
            .await?
            .first()
            .is_some_and(|c| c.2 == "delivered"))
    })
    .await?;
    let rows = env.conversions().await?;
    assert_eq!(rows[0].3, 2, "one failed attempt, then the delivery");
    running.shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), running.task).await???;
    env.finish().await;
    Ok(())
}

#[tokio::test]
async fn redelivery_after_a_worker_crash_gives_no_duplicate_conversion() -> anyhow::Result<()> {
    let env = WorkerEnv::start().await?;
    env.apply(contacts_doc()).await?;
    // The first worker talks to the broker through a proxy we can cut, as
    // if its process died; impact.com answers slowly so the crash happens
    // while a conversion is being posted.
    let proxy = TcpProxy::start("127.0.0.1:5672".parse()?).await?;
    let mut crashing = env.settings.clone();
    crashing.amqp_url = proxy.amqp_url();
    crashing.shutdown_grace_secs = 0;
    let first = spawn_worker(&env, crashing);
    env.sandbox
        .impact()
        .set_latency(Duration::from_millis(1500));
    env.sandbox
        .hubspot()
        .create_contact(PORTAL, new_lead("crash"))?;
    env.publish(&env.new_events()).await?;
    eventually(Duration::from_secs(10), "a recorded conversion", || async {
        Ok(!env.conversions().await?.is_empty())
    })
    .await?;
    proxy.cut();
    first.task.abort();
    let _ = first.task.await;
    first.shutdown.cancel();
    env.sandbox.impact().set_latency(Duration::ZERO);

    // The message is redelivered to a new worker. The first worker's
    // delivery batch runs on a task of its own and may still hold the
    // row's lease: the new worker then retries the message after the first
    // retry delay (10 s), later still on a loaded machine, where 20 s was
    // once too short. What is asserted is one delivery, not how soon.
    let second = spawn_worker(&env, env.settings.clone());
    eventually(
        Duration::from_secs(60),
        "a delivered conversion",
        || async {
            Ok(env
                .conversions()
                .await?
                .first()
                .is_some_and(|c| c.2 == "delivered"))
        },
    )
    .await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rows = env.conversions().await?;
    assert_eq!(rows.len(), 1, "{rows:?}");
    let accepted_originals = env
        .sandbox
        .impact()
        .requests()
        .iter()
        .filter(|r| r.accepted() && !r.is_duplicate())
        .count();
    assert_eq!(accepted_originals, 1, "impact.com credited one action");
    second.shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), second.task).await???;
    env.finish().await;
    Ok(())
}

#[tokio::test]
async fn applying_a_document_reaches_running_workers() -> anyhow::Result<()> {
    let env = WorkerEnv::start().await?;
    let mut paused = contacts_doc();
    paused["status"] = json!("paused");
    env.apply(paused).await?;
    let running = spawn_worker(&env, env.settings.clone());
    let hs = env.sandbox.hubspot();
    hs.create_contact(PORTAL, new_lead("while-paused"))?;
    env.publish(&env.new_events()).await?;
    eventually(Duration::from_secs(10), "a skipped event", || async {
        Ok(env.events().await?.len() == 1)
    })
    .await?;
    // Re-activated through the database only: NOTIFY invalidates the cache.
    let cipher = shared::crypto::SecretCipher::from_base64(crate::support::e2e::KEY)?;
    let doc = crate::support::e2e::portal_doc(
        contacts_doc()["triggers"].clone(),
        contacts_doc()["mappings"].clone(),
    );
    worker::cli::apply_text(&env.pool, &cipher, &doc.to_string(), "test").await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    hs.create_contact(PORTAL, new_lead("after-resume"))?;
    env.publish(&env.new_events()).await?;
    let subs = env
        .sandbox
        .impact()
        .wait_for_submissions(1, Duration::from_secs(10))
        .await?;
    assert_eq!(subs[0].param("ClickId"), Some("after-resume"));
    running.shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), running.task).await???;
    env.finish().await;
    Ok(())
}

#[tokio::test]
async fn the_whole_pipeline_from_a_hubspot_webhook() -> anyhow::Result<()> {
    let env = WorkerEnv::start().await?;
    env.apply(contacts_doc()).await?;
    let mut ingest_settings = env.settings.clone();
    ingest_settings.hubspot_client_secret = Some("sandbox-client-secret".to_owned().into());
    let ingest = harness::spawn_ingest(ingest_settings).await?;
    env.sandbox
        .hubspot()
        .set_webhook_target(Some(WebhookTarget::new(
            ingest.webhook_url(),
            "sandbox-client-secret",
        )));
    let running = spawn_worker(&env, env.settings.clone());
    let hs = env.sandbox.hubspot();
    let id = hs.create_contact(PORTAL, new_lead("from-webhook"))?;
    // A creation is judged by the object as read: let it be read before the change.
    env.sandbox
        .impact()
        .wait_for_submissions(1, Duration::from_secs(20))
        .await?;
    hs.set_property(
        PORTAL,
        sandbox::ObjectType::Contacts,
        id,
        "lifecyclestage",
        "customer",
    )?;
    let waited = env
        .sandbox
        .impact()
        .wait_for_submissions(2, Duration::from_secs(20))
        .await;
    let subs = match waited {
        Ok(s) => s,
        Err(e) => anyhow::bail!(
            "{e}; events: {:?}; emitted: {:?}; delivered: {:?}",
            env.events().await?,
            hs.emitted_events(),
            hs.delivered_events()
        ),
    };
    let mut types: Vec<&str> = subs
        .iter()
        .filter_map(|s| s.param("EventTypeCode"))
        .collect();
    types.sort();
    assert_eq!(types, ["customer", "lead"]);
    running.shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), running.task).await???;
    ingest.stop().await?;
    env.finish().await;
    Ok(())
}

#[tokio::test]
async fn reconnects_after_losing_the_broker() -> anyhow::Result<()> {
    let env = WorkerEnv::start().await?;
    env.apply(contacts_doc()).await?;
    let proxy = TcpProxy::start("127.0.0.1:5672".parse()?).await?;
    let mut settings = env.settings.clone();
    settings.amqp_url = proxy.amqp_url();
    let running = spawn_worker(&env, settings);
    let hs = env.sandbox.hubspot();
    hs.create_contact(PORTAL, new_lead("before"))?;
    env.publish(&env.new_events()).await?;
    env.sandbox
        .impact()
        .wait_for_submissions(1, Duration::from_secs(10))
        .await?;

    proxy.cut();
    hs.create_contact(PORTAL, new_lead("during"))?;
    env.publish(&env.new_events()).await?;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(env.submissions().len(), 1, "nothing consumed while cut off");
    proxy.restore();
    eventually(
        Duration::from_secs(20),
        "two delivered conversions",
        || async {
            Ok(env
                .conversions()
                .await?
                .iter()
                .filter(|c| c.2 == "delivered")
                .count()
                == 2)
        },
    )
    .await?;
    let mut clicks: Vec<String> = env
        .sandbox
        .impact()
        .requests()
        .iter()
        .filter(|r| r.accepted() && !r.is_duplicate())
        .filter_map(|r| r.param("ClickId").map(str::to_owned))
        .collect();
    clicks.sort();
    assert_eq!(clicks, ["before", "during"]);
    running.shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), running.task).await???;
    env.finish().await;
    Ok(())
}

/// Publishes `events` as ingest does, retrying refused attempts (as HubSpot
/// retries a 503) until the broker confirms; the refusals.
async fn publish_until_confirmed(
    publisher: &shared::broker::Publisher,
    events: &[sandbox::WebhookEvent],
) -> anyhow::Result<u32> {
    let body = serde_json::to_vec(events)?;
    let exchange = publisher.topology().events_exchange();
    let mut refused = 0;
    loop {
        let msg = shared::broker::OutgoingMessage {
            exchange: &exchange,
            routing_key: "portal.1001",
            body: &body,
            headers: shared::broker::Envelope {
                received_at_ms: Some(harness::now_ms()),
                ..Default::default()
            }
            .headers(),
            message_id: uuid::Uuid::new_v4().to_string(),
        };
        match publisher.publish_all(&[msg], Duration::from_secs(2)).await {
            Ok(()) => return Ok(refused),
            Err(e) if refused < 20 => {
                refused += 1;
                tracing::info!(error = %e, "publish refused; retrying");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// `CONNECTOR_AMQP_URL` names two nodes (two proxies in front of the local
/// broker); each in turn is lost for good while the other stays up. The
/// worker and a publisher move to the live one without a restart, and
/// every event is delivered once.
#[tokio::test]
async fn moves_to_another_node_when_its_node_is_lost() -> anyhow::Result<()> {
    let env = WorkerEnv::start().await?;
    env.apply(contacts_doc()).await?;
    let broker = "127.0.0.1:5672".parse()?;
    let nodes = [
        TcpProxy::start(broker).await?,
        TcpProxy::start(broker).await?,
    ];
    let mut settings = env.settings.clone();
    settings.amqp_url = format!("{},{}", nodes[0].amqp_url(), nodes[1].amqp_url());
    let running = spawn_worker(&env, settings.clone());
    let publisher = shared::broker::Publisher::new(
        &settings.amqp_url,
        "test-ingest",
        worker::topology(&settings)?,
        1,
    );
    let hs = env.sandbox.hubspot();
    let mut expected = Vec::new();
    for (step, lost) in [(0, None), (1, Some(0)), (2, Some(1)), (3, Some(0))] {
        if let Some(n) = lost {
            nodes[1 - n].restore();
            nodes[n].cut();
        }
        let click = format!("step-{step}");
        hs.create_contact(PORTAL, new_lead(&click))?;
        publish_until_confirmed(&publisher, &env.new_events()).await?;
        expected.push(click);
        eventually(
            Duration::from_secs(30),
            &format!("{} delivered conversions", expected.len()),
            || async {
                Ok(env
                    .conversions()
                    .await?
                    .iter()
                    .filter(|c| c.2 == "delivered")
                    .count()
                    == expected.len())
            },
        )
        .await?;
    }
    let mut clicks: Vec<String> = env
        .sandbox
        .impact()
        .requests()
        .iter()
        .filter(|r| r.accepted() && !r.is_duplicate())
        .filter_map(|r| r.param("ClickId").map(str::to_owned))
        .collect();
    clicks.sort();
    assert_eq!(clicks, expected);
    publisher.close().await;
    running.shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), running.task).await???;
    env.finish().await;
    Ok(())
}
