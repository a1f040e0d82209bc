//! The sandbox's webhook deliveries against the real ingest (and RabbitMQ):
//! what the fake HubSpot signs, ingest verifies and enqueues; with the wrong
//! secret, ingest refuses and the fake retries, then gives up.

use std::time::Duration;

use crate::support::harness::{
    TEST_SECRET, broker_channel, delete_topology, queue_len, spawn_ingest, test_settings,
};
use sandbox::{PortalSeed, Sandbox, SandboxConfig, WebhookTarget};

async fn wait_ready(base: &str) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    for _ in 0..100 {
        if client.get(format!("{base}/readyz")).send().await?.status() == 200 {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::bail!("ingest not ready")
}

#[tokio::test(flavor = "multi_thread")]
async fn ingest_accepts_what_the_sandbox_signs() -> anyhow::Result<()> {
    let settings = test_settings();
    let ingest = spawn_ingest(settings.clone()).await?;
    wait_ready(&ingest.base_url()).await?;
    let (_conn, ch) = broker_channel().await?;
    let work = format!("{}hubspot.events.work", settings.queue_prefix);

    let cfg = SandboxConfig {
        portals: vec![PortalSeed::sized(1001, 3)],
        webhook: Some(WebhookTarget::new(ingest.webhook_url(), TEST_SECRET)),
        webhook_retry_delays: vec![Duration::from_millis(20); 2],
        ..Default::default()
    };
    let sb = Sandbox::start(cfg).await?;
    sb.hubspot().import_contacts(1001, 250)?;
    sb.hubspot().wait_idle().await;
    let stats = sb.hubspot().webhook_stats();
    assert_eq!(
        (stats.delivered_events, stats.failed_attempts),
        (250, 0),
        "{stats:?}"
    );
    assert!(queue_len(&ch, &work).await? > 0);

    // Signed with another secret: refused (4xx), retried, given up.
    sb.hubspot().set_webhook_target(Some(WebhookTarget::new(
        ingest.webhook_url(),
        "wrong-secret",
    )));
    sb.hubspot().import_contacts(1001, 1)?;
    sb.hubspot().wait_idle().await;
    let stats = sb.hubspot().webhook_stats();
    assert_eq!(
        (stats.failed_attempts, stats.gave_up_events),
        (3, 1),
        "{stats:?}"
    );

    sb.shutdown().await;
    delete_topology(&ch, &settings).await?;
    ingest.stop().await
}

#[tokio::test(flavor = "multi_thread")]
async fn escaped_target_urls_are_signed_as_hubspot_decodes_them() -> anyhow::Result<()> {
    let settings = test_settings();
    let ingest = spawn_ingest(settings.clone()).await?;
    wait_ready(&ingest.base_url()).await?;
    let (_conn, ch) = broker_channel().await?;
    let url = format!("{}?tenant=a%40b%3Ac&x=%2A", ingest.webhook_url());
    let cfg = SandboxConfig {
        portals: vec![PortalSeed::sized(1002, 1)],
        webhook: Some(WebhookTarget::new(url, TEST_SECRET)),
        webhook_retry_delays: vec![],
        ..Default::default()
    };
    let sb = Sandbox::start(cfg).await?;
    sb.hubspot().import_contacts(1002, 5)?;
    sb.hubspot().wait_idle().await;
    let stats = sb.hubspot().webhook_stats();
    assert_eq!(
        (stats.delivered_events, stats.failed_attempts),
        (5, 0),
        "{stats:?}"
    );
    sb.shutdown().await;
    delete_topology(&ch, &settings).await?;
    ingest.stop().await
}

#[tokio::test(flavor = "multi_thread")]
async fn ingest_ignores_association_changes_and_accepts_each_private_app() -> anyhow::Result<()> {
    let path = std::env::temp_dir().join(format!("webhook-secrets-{}", uuid::Uuid::new_v4()));
    std::fs::write(&path, "1002=private-app-secret\n")?;
    let mut settings = test_settings();
    settings.webhook_secrets_file = Some(path.display().to_string());
    let ingest = spawn_ingest(settings.clone()).await?;
    wait_ready(&ingest.base_url()).await?;
    let (_conn, ch) = broker_channel().await?;
    let work = format!("{}hubspot.events.work", settings.queue_prefix);
    let cfg = SandboxConfig {
        portals: vec![PortalSeed::sized(1001, 1), PortalSeed::sized(1002, 1)],
        webhook: Some(
            WebhookTarget::new(ingest.webhook_url(), TEST_SECRET)
                .with_portal_secret(1002, "private-app-secret"),
        ),
        webhook_retry_delays: vec![],
        ..Default::default()
    };
    let sb = Sandbox::start(cfg).await?;
    let hs = sb.hubspot();
    let contact = hs.create_contact(1001, [("email", "a@x.test")])?;
    let company = hs.create_company(1001, [("name", "Acme")])?;
    hs.create_contact(1002, [("email", "b@x.test")])?;
    hs.wait_idle().await;
    let enqueued = queue_len(&ch, &work).await?;
    assert!(
        enqueued >= 2,
        "both portals' creations enqueued: {enqueued}"
    );
    // Both directions of the link, in one delivery HubSpot sends as is.
    hs.associate_notifying(
        1001,
        (sandbox::ObjectType::Contacts, contact),
        (sandbox::ObjectType::Companies, company),
    )?;
    hs.wait_idle().await;
    let stats = hs.webhook_stats();
    assert_eq!(
        (
            stats.delivered_events,
            stats.failed_attempts,
            stats.gave_up_events
        ),
        (5, 0, 0),
        "every delivery accepted: {stats:?}"
    );
    assert_eq!(
        queue_len(&ch, &work).await?,
        enqueued,
        "association changes are not enqueued"
    );
    sb.shutdown().await;
    delete_topology(&ch, &settings).await?;
    std::fs::remove_file(&path)?;
    ingest.stop().await
}
