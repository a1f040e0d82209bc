//! The seed guide in a real browser (headless Chromium through
//! chromedriver) against the whole pipeline: sandbox HubSpot and impact.com,
//! the console (website), ingest (webhooks), RabbitMQ, a running worker,
//! PostgreSQL.
//! install → settings → triggers → mappings → a HubSpot change → the
//! conversion in Activity; then the Dashboard, Activity, a conversion's
//! page, "send again" and a dead letter's page at 1280 and 390 px wide
//! (figures checked against the database; with `DOC_SCREENSHOTS=1` the
//! dashboard's and the conversion page's screenshots are copied to
//! `docs/src/images/`); then every page of the website and of the
//! operators' pages (admin listener) at 1280 and 390 px: no horizontal
//! overflow, no serious or critical axe-core violation
//! ([`crate::support::a11y`]). Screenshots go to `target/screenshots/`.

use anyhow::Context as _;
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
    ("site-dashboard", "/dashboard"),
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

/// Fails when the page is wider than the viewport (horizontal scrolling).
async fn no_horizontal_overflow(b: &Browser, what: &str) -> anyhow::Result<()> {
    let v = b
        .run_script(
            "return [document.documentElement.scrollWidth, document.documentElement.clientWidth];",
        )
        .await?;
    let (scroll, client) = (v[0].as_i64().unwrap_or(0), v[1].as_i64().unwrap_or(0));
    anyhow::ensure!(
        client > 0 && scroll <= client,
        "{what}: the page is {scroll} px wide in a {client} px viewport"
    );
    Ok(())
}

/// Opens `path` at 1280 and 390 px: no horizontal overflow at either, a
/// full-page screenshot of each (`{name}-1280.png`, `{name}-390.png`).
async fn at_both_widths(
    b: &Browser,
    base: &str,
    path: &str,
    name: &str,
    shots: &std::path::Path,
) -> anyhow::Result<String> {
    let mut source = String::new();
    for width in [1280, 390] {
        b.viewport(width, 900).await?;
        b.goto(&format!("{base}{path}")).await?;
        no_horizontal_overflow(b, &format!("{path} at {width} px")).await?;
        let tall = b
            .run_script("return document.documentElement.scrollHeight;")
            .await?
            .as_u64()
            .unwrap_or(900)
            .clamp(600, 6000);
        b.viewport(width, tall as u32).await?;
        b.screenshot(&shots.join(format!("{name}-{width}.png")))
            .await?;
        if width == 1280 {
            source = b.source().await?;
        }
    }
    b.viewport(1280, 1024).await?;
    Ok(source)
}

/// The text of the element `id`, as the browser shows it.
async fn text(b: &Browser, id: &str) -> anyhow::Result<String> {
    let v = b
        .run_script(&format!(
            "var e = document.getElementById({id:?}); return e ? e.textContent.trim() : null;"
        ))
        .await?;
    Ok(v.as_str().unwrap_or_default().to_owned())
}

/// The pages of issue 21 walked at both widths, their figures checked
/// against the database.
async fn pages(
    b: &Browser,
    env: &WorkerEnv,
    base: &str,
    shots: &std::path::Path,
) -> anyhow::Result<()> {
    // A contact without a lifecycle stage cannot be mapped: a dead letter.
    env.sandbox
        .hubspot()
        .create_contact(PORTAL, [("hs_lead_status", "NEW"), ("city", "Nice")])?;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let letter: i64 = loop {
        let found: Option<i64> =
            sqlx::query_scalar("SELECT id FROM dead_letters WHERE portal_id = $1 LIMIT 1")
                .bind(PORTAL as i64)
                .fetch_optional(&env.pool)
                .await?;
        if let Some(id) = found {
            break id;
        }
        anyhow::ensure!(std::time::Instant::now() < deadline, "no dead letter");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let (conversion, delivered): (i64, i64) = sqlx::query_as(
        "SELECT max(id), count(*) FROM conversions WHERE portal_id = $1 AND status = 'delivered'",
    )
    .bind(PORTAL as i64)
    .fetch_one(&env.pool)
    .await?;

    let dash = at_both_widths(b, base, "/dashboard", "07-dashboard", shots).await?;
    anyhow::ensure!(dash.contains("<svg class=\"chart\""), "the chart");
    anyhow::ensure!(text(b, "week-delivered").await? == delivered.to_string());
    anyhow::ensure!(text(b, "open-dead-letters").await? == "1");
    anyhow::ensure!(text(b, "credentials-status").await? == "ok");

    at_both_widths(b, base, "/activity", "08-activity", shots).await?;
    // The script localised the times ("… ago", exact on hover); the
    // server's UTC instant stays in the datetime attribute.
    let relative = b
        .run_script(
            "var t = document.querySelector('#conversions time'); \
             return [t.textContent, t.getAttribute('title'), t.getAttribute('datetime')];",
        )
        .await?;
    anyhow::ensure!(
        relative[0].as_str().is_some_and(|t| t.ends_with(" ago")),
        "relative time: {relative}"
    );
    anyhow::ensure!(relative[2].as_str().is_some_and(|t| t.ends_with('Z')));
    // Search by the ClickId.
    b.type_into("#q", "browser-click").await?;
    b.click("#search").await?;
    wait_url(b, &format!("{base}/activity?q=browser-click")).await?;
    let rows = b
        .run_script("return document.querySelectorAll('#conversions tbody tr[data-id]').length;")
        .await?;
    anyhow::ensure!(rows.as_i64() == Some(1), "one match: {rows}");

    let page = at_both_widths(
        b,
        base,
        &format!("/conversions/{conversion}"),
        "09-conversion",
        shots,
    )
    .await?;
    let uri: String = sqlx::query_scalar("SELECT queued_uri FROM conversions WHERE id = $1")
        .bind(conversion)
        .fetch_one(&env.pool)
        .await?;
    anyhow::ensure!(text(b, "queued-uri").await? == uri, "QueuedUri");
    anyhow::ensure!(page.contains("custom_impact_click_id"), "sources shown");
    let attempts = b
        .run_script("return document.querySelectorAll('#attempts tbody tr').length;")
        .await?;
    let stored: i64 =
        sqlx::query_scalar("SELECT count(*) FROM conversion_attempts WHERE conversion_id = $1")
            .bind(conversion)
            .fetch_one(&env.pool)
            .await?;
    anyhow::ensure!(attempts.as_i64() == Some(stored), "{attempts} vs {stored}");

    // Send again: the confirmation says it may credit twice.
    at_both_widths(
        b,
        base,
        &format!("/conversions/{conversion}/send-again"),
        "10-send-again",
        shots,
    )
    .await?;
    anyhow::ensure!(
        text(b, "double-credit")
            .await?
            .contains("may credit the sale twice")
    );

    let dl = at_both_widths(
        b,
        base,
        &format!("/dead-letters/{letter}"),
        "11-dead-letter",
        shots,
    )
    .await?;
    anyhow::ensure!(dl.contains("id=\"replay\""), "Replay offered");

    if std::env::var_os("DOC_SCREENSHOTS").is_some() {
        let docs = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/src/images");
        std::fs::create_dir_all(&docs)?;
        std::fs::copy(
            shots.join("07-dashboard-1280.png"),
            docs.join("dashboard.png"),
        )?;
        std::fs::copy(
            shots.join("09-conversion-1280.png"),
            docs.join("conversion.png"),
        )?;
    }
    Ok(())
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
            page.contains(r#"<span class="badge badge-delivered">delivered</span>"#),
            "the conversion is listed as delivered"
        );
        b.screenshot(&shots.join("06-activity.png")).await?;
        pages(&b, &env, &base, &shots).await?;

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
        // The website's pages, with a conversion's, "send again" and a
        // dead letter's of this run.
        let (conversion, letter): (Option<i64>, Option<i64>) = sqlx::query_as(
            "SELECT (SELECT max(id) FROM conversions WHERE portal_id = $1 AND status = 'delivered'),
                    (SELECT min(id) FROM dead_letters WHERE portal_id = $1)",
        )
        .bind(PORTAL as i64)
        .fetch_one(&env.pool)
        .await?;
        let (conversion, letter) = (
            conversion.context("a delivered conversion")?,
            letter.context("a dead letter")?,
        );
        let (story, again, dead) = (
            format!("/conversions/{conversion}"),
            format!("/conversions/{conversion}/send-again"),
            format!("/dead-letters/{letter}"),
        );
        let mut site = WEBSITE_PAGES.to_vec();
        site.extend([
            ("site-conversion", story.as_str()),
            ("site-send-again", again.as_str()),
            ("site-dead-letter", dead.as_str()),
        ]);
        axe.walk(&b, &base, &site, &shots).await?;

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
