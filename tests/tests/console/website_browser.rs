//! The seed guide in a real browser (headless Chromium through
//! chromedriver) against the whole pipeline: sandbox HubSpot and impact.com,
//! the console (website), ingest (webhooks), RabbitMQ, a running worker,
//! PostgreSQL.
//! install → settings → triggers → mappings → a HubSpot change → the
//! conversion in Activity. Screenshots go to `target/screenshots/`.

use std::{path::PathBuf, time::Duration};

use crate::support::{
    e2e::{PORTAL, WorkerEnv},
    webdriver::{Browser, find_browser},
    website::website_settings,
};
use sandbox::{SandboxConfig, WebhookTarget};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

fn screenshots() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("screenshots")
}

async fn wait_for(b: &Browser, url: &str, needle: &str, secs: u64) -> anyhow::Result<String> {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    loop {
        b.goto(url).await?;
        let page = b.source().await?;
        if page.contains(needle) {
            return Ok(page);
        }
        if std::time::Instant::now() > deadline {
            anyhow::bail!("{needle:?} did not appear on {url}:\n{page}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Waits (without reloading) until the current page contains `needle`:
/// a click returns before the navigation it starts has finished.
async fn wait_text(b: &Browser, needle: &str) -> anyhow::Result<String> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let page = b.source().await.unwrap_or_default();
        if page.contains(needle) {
            return Ok(page);
        }
        if std::time::Instant::now() > deadline {
            anyhow::bail!("{needle:?} did not appear:\n{page}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_url(b: &Browser, prefix: &str) -> anyhow::Result<()> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let url = b.url().await.unwrap_or_default();
        if url.starts_with(prefix) {
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            anyhow::bail!("expected to arrive at {prefix}, still at {url}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_guide_in_headless_chromium() -> anyhow::Result<()> {
    let Some((chromium, chromedriver)) = find_browser() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must install chromium and chromium-driver (.ci/run does)"
        );
        eprintln!(
            "skipped: chromium/chromedriver not installed (apt-get install chromium chromium-driver)"
        );
        return Ok(());
    };
    let env = WorkerEnv::start_with(SandboxConfig::default()).await?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let hooks = TcpListener::bind("127.0.0.1:0").await?;
    let hooks_url = format!("http://{}", hooks.local_addr()?);
    let mut settings = website_settings(&env, &hooks_url);
    settings.console_public_url = Some(base.clone());
    let shutdown = CancellationToken::new();
    let ingest = tokio::spawn(ingest::run(settings.clone(), hooks, shutdown.clone()));
    let console = tokio::spawn(console::run(
        settings.clone(),
        listener,
        None,
        shutdown.clone(),
    ));
    let worker = tokio::spawn(worker::run(settings.clone(), shutdown.clone()));
    env.sandbox
        .hubspot()
        .set_webhook_target(Some(WebhookTarget::new(
            format!("{hooks_url}/webhooks/hubspot"),
            "sandbox-client-secret",
        )));
    let shots = screenshots();
    let b = Browser::start(&chromium, &chromedriver).await?;
    let walk = async {
        // Install: log in through HubSpot, choose the account, Connect app.
        b.goto(&format!("{base}/login")).await?;
        b.screenshot(&shots.join("01-login.png")).await?;
        b.click("#login").await?;
        wait_text(&b, "Choose an account").await?;
        b.click(&format!("input[name=portal_id][value=\"{PORTAL}\"]"))
            .await?;
        b.screenshot(&shots.join("02-hubspot-authorize.png"))
            .await?;
        b.click("button[value=approve]").await?;
        // The redirect chain (HubSpot → callback → settings) takes a moment.
        wait_url(&b, &format!("{base}/settings")).await?;

        // Settings.
        b.type_into("#account_sid", "IRsandbox").await?;
        b.type_into("#auth_token", "sandbox-token").await?;
        b.type_into("#program_id", "1000").await?;
        b.click("#submit").await?;
        wait_text(&b, "Settings saved").await?;
        b.screenshot(&shots.join("03-settings.png")).await?;

        // Event triggers: contacts Active; a deal-stage change trigger.
        b.goto(&format!("{base}/triggers")).await?;
        b.click("#active-contacts").await?;
        wait_text(&b, "Event triggers saved").await?;
        b.select("#add-trigger-deals", "dealstage").await?;
        b.click("#add-trigger-button-deals").await?;
        wait_text(&b, "Trigger added").await?;
        b.screenshot(&shots.join("04-triggers.png")).await?;

        // Field mappings (the seed guide's contacts table).
        b.goto(&format!("{base}/mappings")).await?;
        anyhow::ensure!(
            b.source()
                .await?
                .contains("Required impact.com fields not mapped yet")
        );
        for (from, to) in [
            ("lifecyclestage", "EventTypeCode"),
            ("hs_object_id", "CustomerId"),
            ("contact_[lead_status]_id", "OrderId"),
            ("lastmodifieddate", "EventDate"),
            ("city", "CustomerCity"),
            ("country", "CustomerCountry"),
            ("zip", "CustomerPostCode"),
            ("custom_impact_click_id", "ClickId"),
        ] {
            b.select("#from-contacts", from).await?;
            b.select("#to-contacts", to).await?;
            b.click("#add-mapping-contacts").await?;
            // Each row adds one line to the contacts table.
            wait_text(&b, &format!("<code>{to}</code>")).await?;
        }
        anyhow::ensure!(
            b.source()
                .await?
                .contains("All required impact.com fields are mapped")
        );
        b.screenshot(&shots.join("05-mappings.png")).await?;

        // A HubSpot change: a new lead, delivered by webhook through ingest,
        // the queue and the worker to impact.com.
        env.sandbox.hubspot().create_contact(
            PORTAL,
            [
                ("lifecyclestage", "lead"),
                ("hs_lead_status", "NEW"),
                ("custom_impact_click_id", "browser-click"),
                ("city", "Lyon"),
            ],
        )?;
        // The QueuedUri appears once the conversion is delivered (the page
        // explains "delivered" in prose too, so that word alone proves nothing).
        let page = wait_for(&b, &format!("{base}/activity"), "APISubmissions", 60).await?;
        anyhow::ensure!(
            page.contains(r#"<td class="status">delivered</td>"#),
            "the conversion is listed as delivered"
        );
        b.screenshot(&shots.join("06-activity.png")).await?;
        anyhow::Ok(())
    }
    .await;
    b.quit().await;
    shutdown.cancel();
    let _ = ingest.await;
    let _ = console.await;
    let _ = worker.await;
    let delivered = env.submissions();
    env.finish().await;
    walk?;
    assert!(
        delivered
            .iter()
            .any(|s| format!("{s:?}").contains("browser-click")),
        "impact.com received the conversion"
    );
    Ok(())
}
