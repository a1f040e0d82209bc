//! Submission outcomes: impact.com answers QUEUED and decides later. The
//! worker decides credited conversions from their program's listed actions
//! and reads the submissions of the others until they are Complete; a
//! rejection is surfaced (database, metric, CLI), `ErrorReason` is read as
//! a list of codes (`CONV_DUPLICATE` of our own resend is not a loss, an
//! `ErrorType` alone is no success), and polling stays within the account's
//! rate budget, leaving deliveries their share.

use std::time::Duration;

use crate::support::e2e::{PORTAL, WorkerEnv, eventually, seed_deal_mappings, spawn_worker};
use sandbox::{
    ObjectType, WebhookEvent,
    impact::{Fault, ReadKind},
};
use serde_json::json;
use worker::{MessageOutcome, outcomes::PollConfig};

async fn deal_env() -> anyhow::Result<WorkerEnv> {
    let env = WorkerEnv::start().await?;
    // impact.com's hour, scaled down, so that the poller's pace (its share
    // of the budget spread over the window) allows a read every few
    // milliseconds instead of every seven seconds.
    env.sandbox
        .impact()
        .set_rate_window(Duration::from_secs(20));
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

/// Passes a second apart; conversions are looked for among the listed
/// actions during their first `grace_secs` (0: each submission is read).
fn fast(grace_secs: u64) -> PollConfig {
    PollConfig {
        interval: Duration::from_secs(1),
        max_backoff: Duration::from_secs(2),
        give_up: Duration::from_secs(86_400),
        reserve_percent: 50,
        batch: 100,
        grace: Duration::from_secs(grace_secs),
    }
}

/// The reads the fake answered, by kind: (actions listings, submission reads).
fn reads(env: &WorkerEnv) -> (Vec<u16>, Vec<u16>) {
    let all = env.sandbox.impact().reads();
    let of = |k: ReadKind| {
        all.iter()
            .filter(|r| r.kind == k)
            .map(|r| r.status)
            .collect::<Vec<_>>()
    };
    (of(ReadKind::Actions), of(ReadKind::Submission))
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
    settings.outcomes_grace_secs = 5;
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
    // The credited one was found among the listed actions (the first
    // listings came before impact.com had processed it: the poller came
    // back); only the rejected one, which never became an action, had its
    // submission read, once the grace period was over.
    let (listings, single) = reads(&env);
    assert!(
        !listings.is_empty() && listings.iter().all(|s| *s == 200),
        "{listings:?}"
    );
    assert_eq!(single, [200]);

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
    let site = console::app(console::AppState::from_settings(&web));
    // Two listeners in production: the admin router answers `/admin/...`.
    let get = |path: String| {
        let app = if path.starts_with("/admin/") {
            admin.clone()
        } else {
            site.clone()
        };
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
async fn error_reasons_are_lists_of_codes_and_an_error_type_alone_is_no_success()
-> anyhow::Result<()> {
    let metrics = shared::telemetry::metrics();
    let env = deal_env().await?;
    let imp = env.sandbox.impact();
    // A crash between impact.com's answer and our commit: the message comes
    // back and the same OrderId is sent again; impact.com calls the repeat
    // CONV_DUPLICATE, among other codes, and the first submission was credited.
    let (events, resent) = won_deal(&env)?;
    imp.fail_next([Fault::DropAfterProcessing]);
    assert!(matches!(
        env.process(&events).await,
        MessageOutcome::Retry(_)
    ));
    imp.set_outcome(&resent, "Validation", "RESTRICTED_PROMOCODE");
    assert!(matches!(
        env.process(&events).await,
        MessageOutcome::Done(_)
    ));
    // Sent once only, and impact.com already holds this OrderId (say, from
    // before a retention prune): that duplicate is a real loss.
    let (events, first_send) = won_deal(&env)?;
    imp.set_outcome(&first_send, "Validation", "CONV_DUPLICATE");
    // Two codes at once; and an ErrorType without any reason.
    let (more, two_codes) = won_deal(&env)?;
    let (more2, typed_only) = won_deal(&env)?;
    imp.set_outcome(
        &two_codes,
        "Contract Error",
        "CONTRACT_NOT_FOUND RESTRICTED_PROMOCODE",
    );
    imp.set_outcome(&typed_only, "Validation", "");
    for batch in [events, more, more2] {
        assert!(matches!(env.process(&batch).await, MessageOutcome::Done(_)));
    }

    // Each submission read (no listing): the verdicts come from the codes.
    let cfg = fast(0);
    let orders = [&resent, &first_send, &two_codes, &typed_only];
    eventually(Duration::from_secs(20), "verdicts", || async {
        worker::outcomes::pass(&env.worker, &cfg).await?;
        for o in orders {
            if outcome(&env, o).await?.0.is_none() {
                return Ok(false);
            }
        }
        Ok(true)
    })
    .await?;
    assert_eq!(
        outcome(&env, &resent).await?,
        (
            Some("duplicate_resend".into()),
            Some("Validation".into()),
            Some("RESTRICTED_PROMOCODE CONV_DUPLICATE".into()),
            2
        )
    );
    assert_eq!(
        outcome(&env, &first_send).await?.0.as_deref(),
        Some("rejected")
    );
    assert_eq!(
        outcome(&env, &two_codes).await?,
        (
            Some("rejected".into()),
            Some("Contract Error".into()),
            Some("CONTRACT_NOT_FOUND RESTRICTED_PROMOCODE".into()),
            1
        )
    );
    assert_eq!(
        outcome(&env, &typed_only).await?,
        (Some("rejected".into()), Some("Validation".into()), None, 1)
    );
    let text = metrics.render();
    for label in ["CONTRACT_NOT_FOUND", "unspecified"] {
        assert!(
            text.lines()
                .any(|l| l.starts_with("worker_submissions_total")
                    && l.contains(r#"outcome="rejected""#)
                    && l.contains(&format!(r#"reason="{label}""#))),
            "{label}: {text}"
        );
    }
    // Decided submissions are not looked at again.
    let reads = imp.status_reads().len();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let report = worker::outcomes::pass(&env.worker, &cfg).await?;
    assert_eq!(report.claimed, 0);
    assert_eq!(imp.status_reads().len(), reads);
    env.finish().await;
    Ok(())
}

#[tokio::test]
async fn polling_keeps_to_the_share_of_the_budget_left_for_deliveries() -> anyhow::Result<()> {
    let env = deal_env().await?;
    // An account limited to 10 requests an hour; the poller leaves half.
    env.sandbox.impact().set_rate_limit(Some(10));
    env.sandbox
        .impact()
        .set_rate_window(Duration::from_secs(3600));
    let mut events = Vec::new();
    let mut orders = Vec::new();
    for _ in 0..4 {
        let (e, o) = won_deal(&env)?;
        events.extend(e);
        orders.push(o);
    }
    env.sandbox
        .impact()
        .set_outcome(&orders[0], "Contract Error", "CONTRACT_NOT_FOUND");
    assert!(matches!(
        env.process(&events).await,
        MessageOutcome::Done(_)
    ));
    assert_eq!(env.submissions().len(), 4, "4 of 10 spent by deliveries");

    // Remaining is 6: one listing of the program's actions (down to 5 = the
    // reserve) decides the three credited ones at once.
    let report = worker::outcomes::pass(&env.worker, &fast(1)).await?;
    assert_eq!((report.listings, report.credited), (1, 3), "{report:?}");
    // After the grace period the rejected one needs a read of its own: the
    // budget is at the reserve, so it is deferred, not read.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let report = worker::outcomes::pass(&env.worker, &fast(1)).await?;
    assert_eq!(
        (report.claimed, report.reads, report.later),
        (1, 0, 1),
        "{report:?}"
    );
    assert_eq!(reads(&env), (vec![200], vec![]));

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
        ..fast(1)
    };
    sqlx::query("UPDATE conversions SET outcome_next_check_at = now() WHERE outcome IS NULL")
        .execute(&env.pool)
        .await?;
    let other = worker::Worker::new(&env.settings, env.pool.clone())?;
    worker::outcomes::pass(&other, &greedy).await?;
    let all = env.sandbox.impact().reads();
    let first_429 = all.iter().position(|r| r.status == 429).expect("a 429");
    assert_eq!(first_429, all.len() - 1, "nothing after the 429: {all:?}");
    sqlx::query("UPDATE conversions SET outcome_next_check_at = now() WHERE outcome IS NULL")
        .execute(&env.pool)
        .await?;
    sqlx::query("DELETE FROM outcome_sweeps")
        .execute(&env.pool)
        .await?;
    let report = worker::outcomes::pass(&other, &greedy).await?;
    assert_eq!(report.decided, 0);
    assert_eq!(env.sandbox.impact().reads().len(), all.len(), "paused");
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
async fn two_workers_polling_at_once_list_once_and_read_each_submission_once() -> anyhow::Result<()>
{
    let env = deal_env().await?;
    let won = |n: usize| -> anyhow::Result<Vec<WebhookEvent>> {
        let mut events = Vec::new();
        for _ in 0..n {
            events.extend(won_deal(&env)?.0);
        }
        Ok(events)
    };
    let events = won(6)?;
    assert!(matches!(
        env.process(&events).await,
        MessageOutcome::Done(_)
    ));
    let (a, b) = (
        worker::Worker::new(&env.settings, env.pool.clone())?,
        worker::Worker::new(&env.settings, env.pool.clone())?,
    );
    // Listing: one worker holds the program's lease and decides all six
    // with one request; the other does not list it again.
    let cfg = fast(60);
    let (ra, rb) = tokio::join!(
        worker::outcomes::pass(&a, &cfg),
        worker::outcomes::pass(&b, &cfg)
    );
    let (ra, rb) = (ra?, rb?);
    assert_eq!(ra.credited + rb.credited, 6, "{ra:?} {rb:?}");
    assert_eq!(reads(&env), (vec![200], vec![]));

    // Reading one by one (no listing): each submission is read once.
    let events = won(6)?;
    assert!(matches!(
        env.process(&events).await,
        MessageOutcome::Done(_)
    ));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let cfg = fast(0);
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
    assert_eq!(complete, 12);
    env.finish().await;
    Ok(())
}
