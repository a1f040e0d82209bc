//! The seed guide in a real browser (headless Chromium through
//! chromedriver) against the whole pipeline: sandbox HubSpot and impact.com,
//! the console (website), ingest (webhooks), RabbitMQ, a running worker,
//! PostgreSQL.
//! install → settings → triggers → mappings → a HubSpot change → the
//! conversion in Activity; then every page of the website and of the
//! operators' pages (admin listener) at 1280 and 390 px: no horizontal
//! overflow, no serious or critical axe-core violation
//! ([`crate::support::a11y`]). Screenshots go to `target/screenshots/`.

use std::{path::PathBuf, time::Duration};

use crate::support::{
    a11y::{Axe, find_axe, target_dir},
    e2e::{PORTAL, WorkerEnv},
    webdriver::{Browser, find_browser},
    website::{OPERATOR_TOKEN, website_settings},
};
use sandbox::{SandboxConfig, WebhookTarget};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

fn screenshots() -> PathBuf {
    target_dir().join("screenshots")
}

/// The website's pages the accessibility walk checks once logged in:
/// (screenshot name, path). Add a page here to have it checked.
pub const WEBSITE_PAGES: &[(&str, &str)] = &[
    ("site-login", "/login"),
    ("site-settings", "/settings"),
    ("site-triggers", "/triggers"),
    ("site-mappings", "/mappings"),
    ("site-preview", "/preview"),
    ("site-activity", "/activity"),
    ("site-account", "/account"),
];

/// The operators' pages (admin listener) the walk checks once logged in.
pub const OPERATOR_PAGES: &[(&str, &str)] = &[
    ("ops-portals", "/admin/portals"),
    ("ops-dead-letters", "/admin/dead-letters"),
    ("ops-audit", "/admin/audit"),
];

/// axe-core, or why the accessibility walk is skipped.
fn axe() -> Option<Axe> {
    match find_axe() {
        Some(path) => Some(Axe::load(&path).expect("axe.min.js readable")),
        None => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must install axe-core (.ci/run: npm install --prefix target/axe-core axe-core)"
            );
            eprintln!(
                "accessibility walk skipped: axe-core not installed \
                 (npm install --prefix target/axe-core axe-core@4.14.1, or set AXE_CORE_JS)"
            );
            None
        }
    }
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
    let admin = TcpListener::bind("127.0.0.1:0").await?;
    let admin_base = format!("http://{}", admin.local_addr()?);
    let mut settings = website_settings(&env, &hooks_url);
    settings.console_public_url = Some(base.clone());
    let shutdown = CancellationToken::new();
    let ingest = tokio::spawn(ingest::run(settings.clone(), hooks, shutdown.clone()));
    let console = tokio::spawn(console::run(
        settings.clone(),
        listener,
        Some(admin),
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

        let Some(axe) = axe() else {
            return anyhow::Ok(());
        };
        // A conversion that cannot be built (no lead status, so no
        // OrderId): a dead letter for the operators' pages.
        env.sandbox.hubspot().create_contact(
            PORTAL,
            [
                ("lifecyclestage", "lead"),
                ("custom_impact_click_id", "no-order"),
            ],
        )?;
        // And, as an outage and a forged webhook would leave them, an
        // exhausted delivery and an invalid event (stored directly).
        use shared::db::dead_letters::{NewDeadLetter, ReasonClass, insert};
        for d in [
            NewDeadLetter {
                portal_id: Some(PORTAL as i64),
                object_type: Some("deals".into()),
                object_id: Some(2001),
                reason_class: Some(ReasonClass::Exhausted),
                reason: "impact_unavailable".into(),
                last_status: Some(503),
                last_error: Some("impact.com answered 503 Service Unavailable".into()),
                attempts: 5,
                events: serde_json::json!([]),
                ..NewDeadLetter::default()
            },
            NewDeadLetter {
                portal_id: Some(1002),
                reason_class: Some(ReasonClass::Invalid),
                reason: "signature_invalid".into(),
                last_status: Some(401),
                last_error: Some("X-HubSpot-Signature-v3 does not match".into()),
                attempts: 1,
                events: serde_json::json!([]),
                ..NewDeadLetter::default()
            },
        ] {
            insert(&env.pool, &d).await?;
        }
        axe.walk(&b, &base, WEBSITE_PAGES, &shots).await?;

        // The operators' pages: the login, then every page once logged in.
        axe.walk(&b, &admin_base, &[("ops-login", "/admin/login")], &shots)
            .await?;
        b.goto(&format!("{admin_base}/admin/login")).await?;
        b.type_into("#token", OPERATOR_TOKEN).await?;
        b.click("#login").await?;
        wait_url(&b, &format!("{admin_base}/admin/portals")).await?;
        wait_for(
            &b,
            &format!("{admin_base}/admin/dead-letters"),
            "mapping_incomplete",
            60,
        )
        .await?;
        b.click("#estimate").await?;
        wait_url(&b, &format!("{admin_base}/admin/replays/")).await?;
        let replay = b.url().await?;
        wait_for(&b, &replay, "id=\"confirm\"", 60).await?;
        let replay_path = replay.trim_start_matches(&admin_base).to_owned();
        let mut pages = OPERATOR_PAGES.to_vec();
        pages.push(("ops-replay-estimate", &replay_path));
        axe.walk(&b, &admin_base, &pages, &shots).await?;
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
