//! Submission outcomes: impact.com answers QUEUED and decides later. The
//! worker follows each delivered conversion's submission until it is
//! Complete; a rejection is surfaced (database, metric, CLI), a
//! `CONV_DUPLICATE` of our own resend is not a loss, and polling stays
//! within the account's rate budget, leaving deliveries their share.

use std::time::Duration;

use crate::support::e2e::{PORTAL, WorkerEnv, eventually, seed_deal_mappings, spawn_worker};
use sandbox::{ObjectType, WebhookEvent, impact::Fault};
use serde_json::json;
use worker::{MessageOutcome, outcomes::PollConfig};

async fn deal_env() -> anyhow::Result<WorkerEnv> {
    let env = WorkerEnv::start().await?;
    env.apply(json!({
        "triggers": { "deals": { "on_change": ["dealstage"] } },
        "mappings": { "deals": seed_deal_mappings() }
    }))
    .await?;
    Ok(env)
}

/// Creates a deal and moves it to closedwon; returns the stage change's
/// events and the OrderId.
fn won_deal(env: &WorkerEnv) -> anyhow::Result<(Vec<WebhookEvent>, String)> {
    let hs = env.sandbox.hubspot();
    let contact = hs.create_contact(PORTAL, [("email", "buyer@example.com")])?;
    let deal = hs.create_deal(
        PORTAL,
        [("amount", "100.00"), ("deal_currency_code", "USD")],
        vec![],
        Some(contact),
    )?;
    env.new_events();
    hs.set_property(PORTAL, ObjectType::Deals, deal, "dealstage", "closedwon")?;
    Ok((env.new_events(), format!("{deal}_closedwon")))
}

fn fast() -> PollConfig {
    PollConfig {
        interval: Duration::from_secs(1),
        max_backoff: Duration::from_secs(2),
        give_up: Duration::from_secs(86_400),
        reserve_percent: 50,
        batch: 100,
    }
}

/// (outcome, error type, error reason, attempts) of the conversion with `order_id`.
async fn outcome(
    env: &WorkerEnv,
    order_id: &str,
) -> anyhow::Result<(Option<String>, Option<String>, Option<String>, i32)> {
    let row: (Option<String>, Option<String>, Option<String>, i32) = sqlx::query_as(
        "SELECT outcome, error_type, error_reason, attempts FROM conversions WHERE order_id = $1",
    )
    .bind(order_id)
    .fetch_one(&env.pool)
    .await?;
    Ok(row)
}

#[tokio::test]
async fn a_rejected_submission_is_surfaced_in_the_database_the_metric_and_the_cli()
-> anyhow::Result<()> {
    let metrics = shared::telemetry::metrics();
    let env = deal_env().await?;
    let (mut events, rejected) = won_deal(&env)?;
    let (more, credited) = won_deal(&env)?;
    events.extend(more);
    // impact.com will complete the first with a contract error.
    env.sandbox
        .impact()
        .set_outcome(&rejected, "Contract Error", "CONTRACT_NOT_FOUND");
    env.sandbox
        .impact()
        .set_processing_delay(Duration::from_millis(1500));

    // The whole worker: the queue consumer delivers, the poller follows.
    let mut settings = env.settings.clone();
    settings.outcomes_poll_interval_secs = 1;
    settings.outcomes_max_backoff_secs = 1;
    let running = spawn_worker(&env, settings);
    env.publish(&events).await?;
    eventually(Duration::from_secs(30), "both outcomes", || async {
        let decided: i64 =
            sqlx::query_scalar("SELECT count(*) FROM conversions WHERE outcome IS NOT NULL")
                .fetch_one(&env.pool)
                .await?;
        Ok(decided == 2)
    })
    .await?;
    running.stop().await?;

    assert_eq!(
        outcome(&env, &rejected).await?,
        (
            Some("rejected".into()),
            Some("Contract Error".into()),
            Some("CONTRACT_NOT_FOUND".into()),
            1
        )
    );
    assert_eq!(
        outcome(&env, &credited).await?,
        (Some("complete".into()), None, None, 1)
    );
    // Delivery status is unchanged: "sent", and now also "not credited".
    let statuses: Vec<String> = sqlx::query_scalar("SELECT status FROM conversions ORDER BY id")
        .fetch_all(&env.pool)
        .await?;
    assert_eq!(statuses, ["delivered", "delivered"]);
    // The first look came while impact.com still said Queued (processing
    // delay): the poller came back until Complete.
    let reads = env.sandbox.impact().status_reads();
    assert!(
        reads.len() >= 2 && reads.iter().all(|s| *s == 200),
        "{reads:?}"
    );

    let text = metrics.render();
    assert!(
        text.lines()
            .any(|l| l.starts_with("worker_submissions_total")
                && l.contains(r#"outcome="rejected""#)
                && l.contains(r#"reason="CONTRACT_NOT_FOUND""#)),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("worker_submissions_total")
                && l.contains(r#"outcome="complete""#)),
        "{text}"
    );

    // The CLI filter: only the rejected one, with its reason.
    use clap::Parser as _;
    let cli = worker::cli::Cli::try_parse_from([
        "worker",
        "conversions",
        "list",
        "--status",
        "rejected",
        "--portal",
        "1001",
    ])?;
    let Some(worker::cli::Command::Conversions(cmd)) = cli.command else {
        panic!("parsed as conversions");
    };
    let mut out = Vec::new();
    worker::cli::records::conversions(&env.settings, cmd, &mut out).await?;
    let table = String::from_utf8(out)?;
    assert!(table.starts_with("ID "), "{table}");
    assert!(table.contains(&rejected), "{table}");
    assert!(table.contains("CONTRACT_NOT_FOUND"), "{table}");
    assert!(!table.contains(&credited), "{table}");

    let mut out = Vec::new();
    let cmd = worker::cli::records::ConversionsCommand::List {
        portal: Some(1001),
        status: Some("complete".into()),
        limit: 10,
        object: None,
        object_type: None,
        json: true,
    };
    worker::cli::records::conversions(&env.settings, cmd, &mut out).await?;
    let rows: serde_json::Value = serde_json::from_slice(&out)?;
    assert_eq!(rows.as_array().map(Vec::len), Some(1), "{rows}");
    assert_eq!(rows[0]["order_id"], credited.as_str());

    // The website's JSON API (Activity) and the admin API show it too.
    let web = crate::support::website::website_settings(&env, crate::support::website::PUBLIC_URL);
    let admin = console::admin::router(console::admin::AdminState::from_settings(&web));
    let app = console::app(console::AppState::from_settings(&web)).merge(admin);
    let get = |path: String| {
        let app = app.clone();
        async move {
            use tower::ServiceExt as _;
            let req = axum::http::Request::get(path)
                .header(
                    "authorization",
                    format!("Bearer {}", crate::support::website::OPERATOR_TOKEN),
                )
                .body(axum::body::Body::empty())?;
            let resp = app.oneshot(req).await?;
            let status = resp.status();
            let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX).await?;
            anyhow::Ok((status, serde_json::from_slice::<serde_json::Value>(&bytes)?))
        }
    };
    let (status, activity) = get(format!("/api/v1/portals/{PORTAL}/activity")).await?;
    assert_eq!(status, 200, "{activity}");
    let items = activity["conversions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let shown = items
        .iter()
        .find(|c| c["order_id"] == rejected.as_str())
        .expect("listed");
    assert_eq!(shown["outcome"], "rejected");
    assert_eq!(shown["error_reason"], "CONTRACT_NOT_FOUND");
    assert_eq!(shown["error_type"], "Contract Error");
    let (status, listed) = get("/admin/api/conversions?status=rejected".into()).await?;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["conversions"].as_array().map(Vec::len), Some(1));
    assert_eq!(listed["conversions"][0]["order_id"], rejected.as_str());
    let (status, bad) = get("/admin/api/conversions?status=lost".into()).await?;
    assert_eq!(status, 400, "{bad}");

    // A bad filter is a clear error.
    let cmd = worker::cli::records::ConversionsCommand::List {
        portal: None,
        status: Some("credited".into()),
        limit: 10,
        object: None,
        object_type: None,
        json: false,
    };
    let err = worker::cli::records::conversions(&env.settings, cmd, &mut Vec::new())
        .await
        .expect_err("unknown status");
    assert!(err.to_string().contains("rejected"), "{err}");
    env.finish().await;
    Ok(())
}

#[tokio::test]
async fn conv_duplicate_of_our_own_resend_is_not_a_loss_but_of_a_first_send_is()
-> anyhow::Result<()> {
    let env = deal_env().await?;
    // A crash between impact.com's answer and our commit: the message comes
    // back and the same OrderId is sent again; impact.com calls the repeat
    // CONV_DUPLICATE, and the first submission was credited.
    let (events, resent) = won_deal(&env)?;
    env.sandbox.impact().fail_next([Fault::DropAfterProcessing]);
    assert!(matches!(
        env.process(&events).await,
        MessageOutcome::Retry(_)
    ));
    assert!(matches!(
        env.process(&events).await,
        MessageOutcome::Done(_)
    ));
    // Sent once only, and impact.com already holds this OrderId (say, from
    // before a retention prune): that duplicate is a real loss.
    let (events, first_send) = won_deal(&env)?;
    env.sandbox
        .impact()
        .set_outcome(&first_send, "Validation", "CONV_DUPLICATE");
    assert!(matches!(
        env.process(&events).await,
        MessageOutcome::Done(_)
    ));

    let cfg = fast();
    eventually(Duration::from_secs(20), "verdicts", || async {
        worker::outcomes::pass(&env.worker, &cfg).await?;
        Ok(outcome(&env, &resent).await?.0.is_some()
            && outcome(&env, &first_send).await?.0.is_some())
    })
    .await?;
    assert_eq!(
        outcome(&env, &resent).await?,
        (
            Some("duplicate_resend".into()),
            Some("Validation".into()),
            Some("CONV_DUPLICATE".into()),
            2
        )
    );
    assert_eq!(
        outcome(&env, &first_send).await?.0.as_deref(),
        Some("rejected")
    );
    // Decided submissions are not looked at again.
    let reads = env.sandbox.impact().status_reads().len();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let report = worker::outcomes::pass(&env.worker, &cfg).await?;
    assert_eq!(report.claimed, 0);
    assert_eq!(env.sandbox.impact().status_reads().len(), reads);
    env.finish().await;
    Ok(())
}

#[tokio::test]
async fn polling_keeps_to_the_share_of_the_budget_left_for_deliveries() -> anyhow::Result<()> {
    let env = deal_env().await?;
    // An account limited to 10 requests an hour; the poller leaves half.
    env.sandbox.impact().set_rate_limit(Some(10));
    let mut events = Vec::new();
    for _ in 0..4 {
        events.extend(won_deal(&env)?.0);
    }
    assert!(matches!(
        env.process(&events).await,
        MessageOutcome::Done(_)
    ));
    assert_eq!(env.submissions().len(), 4, "4 of 10 spent by deliveries");

    tokio::time::sleep(Duration::from_millis(1100)).await;
    let report = worker::outcomes::pass(&env.worker, &fast()).await?;
    assert_eq!(report.claimed, 4);
    // Remaining was 6: one read (down to 5 = the reserve), then the
    // poller stops and defers the rest.
    assert_eq!(env.sandbox.impact().status_reads(), [200]);
    assert_eq!((report.decided, report.later), (1, 3));

    // Deliveries still have their share.
    let (events, later_order) = won_deal(&env)?;
    assert!(matches!(
        env.process(&events).await,
        MessageOutcome::Done(_)
    ));
    assert_eq!(env.sandbox.impact().by_order_id(&later_order).len(), 1);

    // Another worker, which learnt nothing from the answers so far and keeps
    // no reserve, meets a 429 (the account's limit drops to what was
    // spent): it stops at once, paused until impact.com's reset, instead of
    // hammering.
    env.sandbox.impact().set_rate_limit(Some(6));
    let greedy = PollConfig {
        reserve_percent: 0,
        ..fast()
    };
    sqlx::query("UPDATE conversions SET outcome_next_check_at = now() WHERE outcome IS NULL")
        .execute(&env.pool)
        .await?;
    let other = worker::Worker::new(&env.settings, env.pool.clone())?;
    worker::outcomes::pass(&other, &greedy).await?;
    let reads = env.sandbox.impact().status_reads();
    let first_429 = reads.iter().position(|s| *s == 429).expect("a 429");
    assert_eq!(
        first_429,
        reads.len() - 1,
        "nothing after the 429: {reads:?}"
    );
    sqlx::query("UPDATE conversions SET outcome_next_check_at = now() WHERE outcome IS NULL")
        .execute(&env.pool)
        .await?;
    let report = worker::outcomes::pass(&other, &greedy).await?;
    assert_eq!(report.decided, 0);
    assert_eq!(
        env.sandbox.impact().status_reads().len(),
        reads.len(),
        "paused"
    );
    env.finish().await;
    Ok(())
}

#[tokio::test]
async fn the_fake_completes_submissions_as_told_and_reports_its_rate_limit() -> anyhow::Result<()> {
    let sandbox = sandbox::Sandbox::start(sandbox::SandboxConfig::default()).await?;
    let http = reqwest::Client::new();
    let base = sandbox.impact_url();
    let r = http
        .put(format!("{base}/_sandbox/outcomes"))
        .json(&json!({"order_id": "O-1", "error_type": "Contract Error", "error_reason": "CONTRACT_NOT_FOUND"}))
        .send()
        .await?;
    assert_eq!(r.status(), 200);
    let submit = |order: &'static str| {
        let (http, base) = (http.clone(), base.clone());
        async move {
            let answer: serde_json::Value = http
                .post(format!("{base}/Advertisers/IRsandbox/Conversions"))
                .basic_auth("IRsandbox", Some("sandbox-token"))
                .header("accept", "application/json")
                .form(&[
                    ("CampaignId", "1000"),
                    ("EventTypeCode", "Sale"),
                    ("EventDate", "2026-11-27T10:00:00Z"),
                    ("OrderId", order),
                    ("CustomerId", "7"),
                ])
                .send()
                .await?
                .json()
                .await?;
            anyhow::Ok(answer["QueuedUri"].as_str().unwrap_or_default().to_owned())
        }
    };
    let read = |uri: String| {
        let (http, base) = (http.clone(), base.clone());
        async move {
            let resp = http
                .get(format!("{base}{uri}"))
                .basic_auth("IRsandbox", Some("sandbox-token"))
                .header("accept", "application/json")
                .send()
                .await?;
            let remaining = resp
                .headers()
                .get("x-ratelimit-remaining")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let status = resp.status().as_u16();
            let body: serde_json::Value = resp.json().await?;
            anyhow::Ok((status, remaining, body))
        }
    };
    let rejected = submit("O-1").await?;
    let credited = submit("O-2").await?;
    let (status, remaining, body) = read(rejected).await?;
    assert_eq!((status, remaining.as_deref()), (200, Some("997")));
    assert_eq!(body["Status"], "Complete");
    assert_eq!(body["ErrorType"], "Contract Error");
    assert_eq!(body["ErrorReason"], "CONTRACT_NOT_FOUND");
    let (_, _, body) = read(credited.clone()).await?;
    assert_eq!(body["ErrorReason"], serde_json::Value::Null);
    // Reads count against the hourly limit: over it, 429.
    sandbox.impact().set_rate_limit(Some(4));
    let (status, remaining, _) = read(credited).await?;
    assert_eq!((status, remaining.as_deref()), (429, Some("0")));
    Ok(())
}

#[tokio::test]
async fn two_workers_polling_at_once_read_each_submission_once() -> anyhow::Result<()> {
    let env = deal_env().await?;
    let mut events = Vec::new();
    for _ in 0..6 {
        events.extend(won_deal(&env)?.0);
    }
    assert!(matches!(
        env.process(&events).await,
        MessageOutcome::Done(_)
    ));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (a, b) = (
        worker::Worker::new(&env.settings, env.pool.clone())?,
        worker::Worker::new(&env.settings, env.pool.clone())?,
    );
    let cfg = fast();
    let (ra, rb) = tokio::join!(
        worker::outcomes::pass(&a, &cfg),
        worker::outcomes::pass(&b, &cfg)
    );
    let (ra, rb) = (ra?, rb?);
    assert_eq!(ra.claimed + rb.claimed, 6, "{ra:?} {rb:?}");
    assert_eq!(env.sandbox.impact().status_reads().len(), 6);
    let complete: i64 =
        sqlx::query_scalar("SELECT count(*) FROM conversions WHERE outcome = 'complete'")
            .fetch_one(&env.pool)
            .await?;
    assert_eq!(complete, 6);
    env.finish().await;
    Ok(())
}
