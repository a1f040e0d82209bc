//! Per-portal webhook secrets end to end: private apps in two HubSpot
//! accounts, each signing with its own secret, through ingest (secrets read
//! from the database in the background) and a running worker; a secret set
//! through the product reaching a running ingest without a restart; the
//! secrets file; a database that is down when ingest starts; a key that is
//! missing when secrets are stored.

use std::time::{Duration, Instant};

use crate::support::{
    e2e::{WorkerEnv, eventually, new_lead, seed_contact_mappings, spawn_worker},
    harness::{self, IngestHandle, TEST_SECRET},
};
use sandbox::{PortalSeed, SandboxConfig, WebhookTarget};
use serde_json::{Value, json};
use shared::config::Settings;

const PUBLIC_SECRET: &str = "sandbox-client-secret";

/// A private-app portal's document, with `webhook_secret` as given
/// (`Value::Null` removes it; absent when `None`).
fn doc(portal: u64, webhook_secret: Option<Value>) -> Value {
    let mut hubspot = json!({ "private_app_token": format!("pat-sandbox-{portal}") });
    if let Some(s) = webhook_secret {
        hubspot["webhook_secret"] = s;
    }
    json!({
        "portal_id": portal,
        "hubspot": hubspot,
        "impact": { "account_sid": "IRsandbox", "auth_token": "sandbox-token", "program_id": "1000" },
        "triggers": { "contacts": { "on_create": true } },
        "mappings": { "contacts": seed_contact_mappings() }
    })
}

/// Ingest on `env`'s database, following its webhook secrets.
async fn ingest_on(settings: &Settings) -> anyhow::Result<IngestHandle> {
    let mut s = settings.clone();
    s.hubspot_client_secret = Some(PUBLIC_SECRET.to_owned().into());
    s.webhook_secrets_db = true;
    // Changes must arrive through NOTIFY, not the periodic reload.
    s.webhook_secrets_refresh_secs = 3600;
    let ingest = harness::spawn_ingest(s).await?;
    ready(&ingest).await?;
    Ok(ingest)
}

async fn ready(ingest: &IngestHandle) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    eventually(Duration::from_secs(10), "ingest ready", || {
        let (client, url) = (client.clone(), format!("{}/readyz", ingest.base_url()));
        async move { Ok(client.get(url).send().await?.status() == 200) }
    })
    .await
}

/// The status of one event of `portal`, signed with `secret`.
async fn send(ingest: &IngestHandle, secret: &str, portal: u64) -> anyhow::Result<u16> {
    let body = harness::event_batch(portal, harness::now_ms(), 1);
    let resp =
        harness::signed_request(&reqwest::Client::new(), &ingest.webhook_url(), secret, body)
            .send()
            .await?;
    Ok(resp.status().as_u16())
}

#[tokio::test]
async fn two_private_apps_with_their_own_secrets_both_convert() -> anyhow::Result<()> {
    let env = WorkerEnv::start_with(SandboxConfig {
        portals: vec![PortalSeed::sized(1001, 2), PortalSeed::sized(1002, 2)],
        ..SandboxConfig::default()
    })
    .await?;
    env.apply(doc(1001, Some(json!("secret-a-0123456789"))))
        .await?;
    env.apply(doc(1002, Some(json!("secret-b-0123456789"))))
        .await?;
    let ingest = ingest_on(&env.settings).await?;
    // HubSpot signs each private app's webhooks with that app's secret.
    let hs = env.sandbox.hubspot();
    hs.set_webhook_target(Some(
        WebhookTarget::new(ingest.webhook_url(), PUBLIC_SECRET)
            .with_portal_secret(1001, "secret-a-0123456789")
            .with_portal_secret(1002, "secret-b-0123456789"),
    ));
    let running = spawn_worker(&env, env.settings.clone());
    hs.create_contact(1001, new_lead("from-a"))?;
    hs.create_contact(1002, new_lead("from-b"))?;
    env.sandbox
        .impact()
        .wait_for_submissions(2, Duration::from_secs(20))
        .await?;
    assert_eq!(env.submitted("ClickId"), ["from-a", "from-b"]);
    let stats = hs.webhook_stats();
    assert_eq!(
        stats.failed_attempts, 0,
        "every delivery accepted: {stats:?}"
    );

    // Portal A's secret claiming portal B, the public app's secret claiming
    // a private-app portal: refused, nothing enqueued.
    assert_eq!(send(&ingest, "secret-a-0123456789", 1002).await?, 401);
    assert_eq!(send(&ingest, PUBLIC_SECRET, 1001).await?, 401);
    assert_eq!(send(&ingest, "secret-b-0123456789", 1002).await?, 200);
    assert_eq!(
        send(&ingest, PUBLIC_SECRET, 1003).await?,
        200,
        "a portal without a secret of its own: the default"
    );

    running.stop().await?;
    ingest.stop().await?;
    env.finish().await;
    Ok(())
}

#[tokio::test]
async fn a_secret_set_through_the_product_reaches_a_running_ingest() -> anyhow::Result<()> {
    let env = WorkerEnv::start().await?;
    env.apply(doc(1001, None)).await?;
    let ingest = ingest_on(&env.settings).await?;
    assert_eq!(send(&ingest, "fresh-secret-0123456789", 1001).await?, 401);
    assert_eq!(send(&ingest, PUBLIC_SECRET, 1001).await?, 200);

    // `worker portal apply` with the private app's secret.
    env.apply(doc(1001, Some(json!("fresh-secret-0123456789"))))
        .await?;
    let set_at = Instant::now();
    eventually(
        Duration::from_secs(5),
        "the new secret accepted",
        || async { Ok(send(&ingest, "fresh-secret-0123456789", 1001).await? == 200) },
    )
    .await?;
    let took = set_at.elapsed();
    assert_eq!(
        send(&ingest, PUBLIC_SECRET, 1001).await?,
        401,
        "no longer the default"
    );

    // Applying the document again without the key keeps the secret.
    env.apply(doc(1001, None)).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(send(&ingest, "fresh-secret-0123456789", 1001).await?, 200);

    // `null` removes it: back to the default.
    env.apply(doc(1001, Some(Value::Null))).await?;
    eventually(Duration::from_secs(5), "the default again", || async {
        Ok(send(&ingest, PUBLIC_SECRET, 1001).await? == 200)
    })
    .await?;
    assert_eq!(send(&ingest, "fresh-secret-0123456789", 1001).await?, 401);
    eprintln!("a new webhook secret reached ingest in {took:?}");

    ingest.stop().await?;
    env.finish().await;
    Ok(())
}

#[tokio::test]
async fn ingest_starts_with_the_database_down_and_serves_the_default_secret() -> anyhow::Result<()>
{
    let mut settings = harness::test_settings();
    settings.webhook_secrets_db = true;
    // Nothing listens on port 1.
    settings.database_url = "postgres://postgres@127.0.0.1:1/none".into();
    let ingest = harness::spawn_ingest(settings.clone()).await?;
    ready(&ingest).await?;
    assert_eq!(send(&ingest, TEST_SECRET, 1001).await?, 200);
    assert_eq!(send(&ingest, "other-secret-0123456789", 1001).await?, 401);
    let metrics = reqwest::get(format!("{}/metrics", ingest.base_url()))
        .await?
        .text()
        .await?;
    let failures = metrics
        .lines()
        .find(|l| {
            l.starts_with("ingest_webhook_secrets_refresh_failures_total{source=\"database\"}")
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok());
    assert!(failures.is_some_and(|n| n >= 1.0), "{metrics}");
    assert!(
        metrics.contains("ingest_webhook_secrets_age_seconds"),
        "{metrics}"
    );
    ingest.stop().await?;
    let (_c, ch) = harness::broker_channel().await?;
    harness::delete_topology(&ch, &settings).await
}

#[tokio::test]
async fn stored_secrets_without_the_key_stop_ingest_at_start() -> anyhow::Result<()> {
    let env = WorkerEnv::start().await?;
    env.apply(doc(1001, Some(json!("stored-secret-0123456789"))))
        .await?;
    let mut settings = env.settings.clone();
    settings.webhook_secrets_db = true;
    settings.encryption_key = None;
    let ingest = harness::spawn_ingest(settings).await?;
    let ended = tokio::time::timeout(Duration::from_secs(15), ingest.task).await??;
    let e = ended.expect_err("refuses to start").to_string();
    assert!(e.contains("CONNECTOR_ENCRYPTION_KEY is not set"), "{e}");
    assert!(e.contains("1 portal(s) have a webhook secret"), "{e}");
    assert!(
        !e.contains("stored-secret-0123456789") && !e.contains('\n'),
        "{e}"
    );
    env.finish().await;
    Ok(())
}

#[tokio::test]
async fn the_secrets_file_is_followed_while_ingest_runs() -> anyhow::Result<()> {
    let path = std::env::temp_dir().join(format!("webhook-secrets-{}", harness::unique_prefix()));
    std::fs::write(&path, "# private apps\n1001=first-secret-0123456789\n")?;
    let mut settings = harness::test_settings();
    settings.webhook_secrets_file = Some(path.display().to_string());
    let ingest = harness::spawn_ingest(settings.clone()).await?;
    ready(&ingest).await?;
    assert_eq!(send(&ingest, "first-secret-0123456789", 1001).await?, 200);
    assert_eq!(send(&ingest, TEST_SECRET, 1001).await?, 401);
    assert_eq!(send(&ingest, TEST_SECRET, 1002).await?, 200);

    std::fs::write(
        &path,
        "1001=second-secret-0123456789\n1002=other-secret-0123456789\n",
    )?;
    eventually(Duration::from_secs(6), "the changed file", || async {
        Ok(send(&ingest, "second-secret-0123456789", 1001).await? == 200)
    })
    .await?;
    assert_eq!(send(&ingest, "first-secret-0123456789", 1001).await?, 401);
    assert_eq!(send(&ingest, "other-secret-0123456789", 1002).await?, 200);

    // A broken file is refused: the secrets read before stay.
    std::fs::write(&path, "1001 second-secret-0123456789\n")?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(send(&ingest, "second-secret-0123456789", 1001).await?, 200);

    ingest.stop().await?;
    std::fs::remove_file(&path)?;
    let (_c, ch) = harness::broker_channel().await?;
    harness::delete_topology(&ch, &settings).await
}
