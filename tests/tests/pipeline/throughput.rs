//! Throughput behaviour (issue 7), asserted by counts and order, never by
//! speed: a batch of deal stage changes costs a handful of HubSpot calls
//! (batch reads and batch associations), a noisy portal does not starve
//! a quiet one, and messages that wait for a slot (held compressed) are
//! processed exactly as they came.

use std::time::{Duration, Instant};

use crate::support::{
    e2e::{
        PORTAL, WorkerEnv, portal_doc, seed_contact_mappings, seed_deal_mappings,
        seed_line_item_mappings,
    },
    harness,
};
use sandbox::{PortalSeed, SandboxConfig, WebhookEvent};
use serde_json::json;
use shared::broker::{Envelope, OutgoingMessage, Publisher};
use tokio_util::sync::CancellationToken;
use worker::{EventResult, MessageOutcome};

const QUIET: u64 = 1002;

/// A new lead's properties, with click id `click-{i}`.
fn lead(i: usize) -> [(&'static str, String); 2] {
    [
        ("lifecyclestage", "lead".to_owned()),
        ("custom_impact_click_id", format!("click-{i}")),
    ]
}

/// Contact creations fire, one OrderId per contact: (triggers, mappings).
fn contacts_on_create() -> (serde_json::Value, serde_json::Value) {
    let mut mappings = seed_contact_mappings();
    mappings[2] = json!({ "from": "hs_object_id", "to": "OrderId" });
    (
        json!({ "contacts": { "on_create": true } }),
        json!({ "contacts": mappings }),
    )
}

/// A worker whose one portal converts contact creations, HubSpot answering
/// after `latency`, and the creation events of `n` new leads
/// (`click-0` ... `click-{n-1}`), not published yet.
async fn new_leads(latency: Duration, n: usize) -> anyhow::Result<(WorkerEnv, Vec<WebhookEvent>)> {
    let env = WorkerEnv::start_with(SandboxConfig {
        portals: vec![PortalSeed::sized(PORTAL, 5)],
        hubspot_latency: latency,
        ..SandboxConfig::default()
    })
    .await?;
    let (triggers, mappings) = contacts_on_create();
    env.apply(portal_doc(triggers, mappings)).await?;
    let hs = env.sandbox.hubspot();
    for i in 0..n {
        hs.create_contact(PORTAL, lead(i))?;
    }
    let events = env.new_events();
    Ok((env, events))
}

/// Runs a worker with `settings` until `n` conversions reached impact.com
/// (60 s at most), then `linger` longer, and stops it.
async fn run_worker_until(
    env: &WorkerEnv,
    settings: shared::config::Settings,
    n: usize,
    linger: Duration,
) -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    let (w, token) = (env.worker.clone(), shutdown.clone());
    let task = tokio::spawn(async move { worker::run_with(w, &settings, token).await });
    let started = Instant::now();
    while env.submissions().len() < n && started.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(linger).await;
    shutdown.cancel();
    task.await??;
    Ok(())
}

/// A worker whose deal mappings need line items and the deal's contact,
/// and the webhook events of 30 deals moved to Closed Won.
async fn thirty_deals_closed_won() -> anyhow::Result<(WorkerEnv, Vec<WebhookEvent>)> {
    let env = WorkerEnv::start().await?;
    let mut deals = seed_deal_mappings();
    deals.extend(seed_line_item_mappings());
    env.apply(json!({
        "triggers": { "deals": { "on_change": ["dealstage"] } },
        "mappings": { "deals": deals }
    }))
    .await?;
    env.sandbox
        .hubspot()
        .deal_stage_stream(PORTAL, 30, &["closedwon"])?;
    let changes: Vec<WebhookEvent> = env
        .new_events()
        .into_iter()
        .filter(|e| e.subscription_type == "deal.propertyChange")
        .collect();
    Ok((env, changes))
}

#[tokio::test]
async fn a_batch_of_deal_stage_changes_costs_a_few_batch_calls() -> anyhow::Result<()> {
    let (env, changes) = thirty_deals_closed_won().await?;
    let hs = env.sandbox.hubspot();
    assert_eq!(changes.len(), 30);
    let before = hs.api_calls(PORTAL);
    let outcome = env.process(&changes).await;
    let MessageOutcome::Done(results) = outcome else {
        panic!("{outcome:?}")
    };
    assert!(
        results
            .iter()
            .all(|r| matches!(r, EventResult::Delivered { .. })),
        "{results:?}"
    );
    // Deals, their line-item associations, the line items (and the contact
    // associations when a mapping needs them): one batch call each, and the
    // pipelines once — not two or three calls per deal.
    let calls = hs.api_calls(PORTAL) - before;
    assert!(
        (3..=5).contains(&calls),
        "{calls} HubSpot calls for 30 deals"
    );
    let subs = env.submissions();
    assert_eq!(subs.len(), 30);
    for s in &subs {
        assert_eq!(s.param("ItemSku1"), Some("SKU-ANVIL"), "{s:?}");
        assert_eq!(s.param("ItemName1"), Some("Anvil"));
        assert!(s.param("CustomerId").is_some(), "the deal's contact");
        assert_eq!(s.param("EventTypeCode"), Some("Closed Won"));
    }
    env.finish().await;
    Ok(())
}

#[tokio::test]
async fn a_failing_association_batch_retries_the_message_instead_of_reading_deal_by_deal()
-> anyhow::Result<()> {
    let (env, changes) = thirty_deals_closed_won().await?;
    let hs = env.sandbox.hubspot();
    // The deals' batch read works; their line-item associations do not.
    hs.fail_next_on("/associations/", 1);
    let before = hs.api_calls(PORTAL);
    let outcome = env.process(&changes).await;
    assert!(matches!(outcome, MessageOutcome::Retry(_)), "{outcome:?}");
    let calls = hs.api_calls(PORTAL) - before;
    assert!(
        calls <= 3,
        "{calls} HubSpot calls: no deal was read on its own after the batch failed"
    );
    assert!(env.submissions().is_empty(), "nothing sent half-read");
    // The retried message goes through in a few batch calls.
    let before = hs.api_calls(PORTAL);
    let outcome = env.process(&changes).await;
    let MessageOutcome::Done(results) = outcome else {
        panic!("{outcome:?}")
    };
    assert!(
        results
            .iter()
            .all(|r| matches!(r, EventResult::Delivered { .. })),
        "{results:?}"
    );
    let calls = hs.api_calls(PORTAL) - before;
    assert!((3..=5).contains(&calls), "{calls} HubSpot calls");
    let subs = env.submissions();
    assert_eq!(subs.len(), 30);
    assert!(
        subs.iter()
            .all(|s| s.param("ItemSku1") == Some("SKU-ANVIL"))
    );
    env.finish().await;
    Ok(())
}

/// One message with one contact creation of `portal`, as ingest publishes it.
async fn publish(
    publisher: &Publisher,
    exchange: &str,
    portal: u64,
    event: &WebhookEvent,
) -> anyhow::Result<()> {
    publish_batch(publisher, exchange, portal, std::slice::from_ref(event)).await
}

/// One message with these events of `portal`, as ingest publishes a batch.
async fn publish_batch(
    publisher: &Publisher,
    exchange: &str,
    portal: u64,
    events: &[WebhookEvent],
) -> anyhow::Result<()> {
    let body = serde_json::to_vec(events)?;
    let headers = Envelope {
        portal: Some(portal),
        received_at_ms: Some(harness::now_ms()),
        ..Envelope::default()
    }
    .headers();
    let key = format!("portal.{portal}");
    let msg = OutgoingMessage {
        exchange,
        routing_key: &key,
        body: &body,
        headers,
        message_id: uuid::Uuid::new_v4().to_string(),
    };
    publisher
        .publish_all(&[msg], Duration::from_secs(5))
        .await?;
    Ok(())
}

#[tokio::test]
async fn a_noisy_portal_does_not_starve_a_quiet_one() -> anyhow::Result<()> {
    let cfg = SandboxConfig {
        portals: vec![PortalSeed::sized(PORTAL, 5), PortalSeed::sized(QUIET, 5)],
        // Every HubSpot read takes a while: the noisy portal's 40 messages
        // keep the worker busy for seconds.
        hubspot_latency: Duration::from_millis(150),
        ..SandboxConfig::default()
    };
    let env = WorkerEnv::start_with(cfg).await?;
    let (triggers, mappings) = contacts_on_create();
    env.apply(portal_doc(triggers.clone(), mappings.clone()))
        .await?;
    let mut quiet_doc = portal_doc(triggers, mappings);
    quiet_doc["portal_id"] = json!(QUIET);
    quiet_doc["hubspot"] = json!({ "private_app_token": format!("pat-sandbox-{QUIET}") });
    env.apply(quiet_doc).await?;

    let hs = env.sandbox.hubspot();
    for i in 0..40 {
        hs.create_contact(PORTAL, lead(i))?;
    }
    hs.create_contact(QUIET, lead(99))?;
    let events = env.new_events();
    let topology = worker::topology(&env.settings)?;
    let publisher = Publisher::new(&env.settings.amqp_url, "test", topology.clone(), 1);
    let exchange = topology.events_exchange();
    // 40 messages of the noisy portal first, then the quiet portal's.
    for e in &events {
        publish(&publisher, &exchange, e.portal_id, e).await?;
    }
    publisher.close().await;

    let mut settings = env.settings.clone();
    settings.worker_prefetch = 16;
    settings.worker_concurrency = 4;
    settings.worker_portal_concurrency = 2;
    settings.worker_portal_backlog = 6;
    run_worker_until(&env, settings, 41, Duration::ZERO).await?;
    let subs = env.submissions();
    assert_eq!(subs.len(), 41, "every conversion, once");
    let quiet_at = subs
        .iter()
        .position(|s| s.param("ClickId") == Some("click-99"))
        .expect("the quiet portal's conversion");
    assert!(
        quiet_at < 20,
        "the quiet portal's conversion came {quiet_at}th, behind the noisy portal's backlog"
    );
    env.finish().await;
    Ok(())
}

/// One busy portal, and nothing else: what the worker deferred over the
/// portal's backlog bound comes back as soon as it runs low, not after the
/// deferral delay (an hour here, far beyond the test's 60 s).
#[tokio::test]
async fn a_worker_that_runs_low_pulls_its_deferred_messages_back() -> anyhow::Result<()> {
    let (env, events) = new_leads(Duration::from_millis(20), 30).await?;
    let topology = worker::topology(&env.settings)?;
    let publisher = Publisher::new(&env.settings.amqp_url, "test", topology.clone(), 1);
    for e in &events {
        publish(&publisher, &topology.events_exchange(), e.portal_id, e).await?;
    }
    publisher.close().await;

    let mut settings = env.settings.clone();
    settings.retry_schedule = "1h".into();
    settings.worker_prefetch = 16;
    settings.worker_concurrency = 2;
    settings.worker_portal_concurrency = 2;
    settings.worker_portal_backlog = 4;
    let pulled_before = worker::runtime::pull_back::pulled_total();
    run_worker_until(&env, settings.clone(), 30, Duration::from_millis(300)).await?;
    let mut expected: Vec<String> = (0..30).map(|i| format!("click-{i}")).collect();
    expected.sort();
    assert_eq!(
        env.submitted("ClickId"),
        expected,
        "every conversion, once, within the test's minute"
    );
    let pulled = worker::runtime::pull_back::pulled_total() - pulled_before;
    assert!(
        pulled >= 20,
        "30 messages over a backlog of 4: most were deferred and pulled back ({pulled})"
    );
    if let Ok((_c, ch)) = harness::broker_channel().await {
        harness::delete_topology(&ch, &settings).await?;
    }
    env.finish().await;
    Ok(())
}

#[tokio::test]
async fn messages_that_wait_for_a_slot_are_processed_as_they_came() -> anyhow::Result<()> {
    // Each message takes a while, so the others wait for the one slot.
    let (env, events) = new_leads(Duration::from_millis(100), 40).await?;
    assert!(events.len() >= 40, "one creation event per contact");
    let topology = worker::topology(&env.settings)?;
    let publisher = Publisher::new(&env.settings.amqp_url, "test", topology.clone(), 1);
    let exchange = topology.events_exchange();
    let compressed_before = worker::runtime::held::compressed_total();
    // Four messages (ten contacts each): bodies long enough to be held
    // compressed while they wait.
    for chunk in events.chunks(events.len().div_ceil(4)) {
        assert!(serde_json::to_vec(chunk)?.len() >= worker::runtime::held::COMPRESS_FROM);
        publish_batch(&publisher, &exchange, PORTAL, chunk).await?;
    }
    publisher.close().await;

    let mut settings = env.settings.clone();
    settings.worker_concurrency = 1;
    settings.worker_portal_concurrency = 1;
    // A moment more than the 40: nothing beyond them may arrive.
    run_worker_until(&env, settings, 40, Duration::from_millis(300)).await?;
    let clicks = env.submitted("ClickId");
    let mut expected: Vec<String> = (0..40).map(|i| format!("click-{i}")).collect();
    expected.sort();
    assert_eq!(clicks, expected, "every event's conversion, once, as sent");
    assert!(
        worker::runtime::held::compressed_total() > compressed_before,
        "messages waited, held compressed"
    );
    env.finish().await;
    Ok(())
}
