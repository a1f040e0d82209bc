//! The outcome poller's cost: 5,000 conversions an hour, 2 % of them
//! rejected, are all decided within the share of impact.com's default
//! budget (1,000 requests an hour per account) that the poller leaves to
//! deliveries, half of it. Reading every submission would take 5,000
//! requests; listing a program's actions decides the credited ones many at
//! a time, and only the rejected ones are read one by one.
//!
//! The hour runs in seconds: the fake's rate-limit window, the poller's
//! interval and grace period are scaled down alike, and the test counts
//! the requests the poller spent rather than timing anything.

use std::time::Duration;

use futures::StreamExt as _;
use secrecy::SecretString;
use serde_json::json;
use shared::impact::ImpactCredentials;
use tokio_util::sync::CancellationToken;
use worker::outcomes::PollConfig;

use crate::support::e2e::{PORTAL, WorkerEnv, eventually, seed_deal_mappings};
use sandbox::impact::ReadKind;

/// impact.com's hour, scaled down.
const HOUR: Duration = Duration::from_secs(8);
const CONVERSIONS: usize = 5_000;
const BATCHES: usize = 50;
/// Every 50th conversion is rejected (2 %).
const REJECTED_EVERY: usize = 50;

/// A conversion as delivered: OrderId, parameters, QueuedUri.
type Delivered = (String, Vec<(String, String)>, String);

fn params(order: &str) -> Vec<(String, String)> {
    [
        ("CampaignId", "1000"),
        ("EventTypeCode", "ClosedWon"),
        ("EventDate", "2026-12-04T10:00:00Z"),
        ("OrderId", order),
        ("CustomerId", "501"),
        ("CurrencyCode", "USD"),
        ("Amount", "100.00"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// Delivers one batch of conversions (through the worker's impact.com
/// client, so their answers feed its budget) and records them delivered.
async fn deliver(env: &WorkerEnv, batch: usize) -> anyhow::Result<()> {
    let creds = ImpactCredentials {
        account_sid: "IRsandbox".into(),
        auth_token: SecretString::from("sandbox-token"),
    };
    let per = CONVERSIONS / BATCHES;
    let orders: Vec<String> = (0..per)
        .map(|i| format!("{}_closedwon", batch * per + i))
        .collect();
    let answers: Vec<anyhow::Result<Delivered>> = futures::stream::iter(orders)
        .map(|order| {
            let (impact, creds) = (env.worker.impact.clone(), creds.clone());
            async move {
                let p = params(&order);
                let q = impact.submit_conversion(&creds, &p).await?;
                let uri = q
                    .queued_uri
                    .ok_or_else(|| anyhow::anyhow!("no QueuedUri"))?;
                anyhow::Ok((order, p, uri))
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let mut ids = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for a in answers {
        let (order, p, uri) = a?;
        ids.0
            .push(order.trim_end_matches("_closedwon").parse::<i64>()?);
        ids.1.push(order);
        ids.2.push(serde_json::to_string(&p)?);
        ids.3.push(uri);
    }
    sqlx::query(
        "INSERT INTO conversions (portal_id, event_type, order_id, object_type, object_id,
             payload, status, attempts, queued_uri, delivered_at)
         SELECT $1, 'ClosedWon', o, 'deals', id, p::jsonb, 'delivered', 1, u, clock_timestamp()
         FROM unnest($2::bigint[], $3::text[], $4::text[], $5::text[]) AS t(id, o, p, u)",
    )
    .bind(PORTAL as i64)
    .bind(ids.0)
    .bind(ids.1)
    .bind(ids.2)
    .bind(ids.3)
    .execute(&env.pool)
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn five_thousand_conversions_an_hour_are_decided_within_the_pollers_share()
-> anyhow::Result<()> {
    let metrics = shared::telemetry::metrics();
    let env = WorkerEnv::start().await?;
    env.apply(json!({
        "triggers": { "deals": { "on_change": ["dealstage"] } },
        "mappings": { "deals": seed_deal_mappings() }
    }))
    .await?;
    let imp = env.sandbox.impact();
    // impact.com's default budget, enforced, over a scaled hour; conversions
    // themselves are not counted ("Certain resources like Conversions are
    // not limited"), so all of it is reads.
    imp.set_rate_limit(Some(1000));
    imp.set_rate_window(HOUR);
    imp.set_conversions_unlimited(true);
    imp.set_processing_delay(Duration::from_millis(300));
    for i in (0..CONVERSIONS).step_by(REJECTED_EVERY) {
        imp.set_outcome(
            &format!("{i}_closedwon"),
            "Contract Error",
            "CONTRACT_NOT_FOUND",
        );
    }
    // The defaults, scaled: a pass a "minute", a grace period of half an "hour".
    let cfg = PollConfig {
        interval: HOUR / 60,
        max_backoff: HOUR / 15,
        give_up: Duration::from_secs(86_400),
        reserve_percent: 50,
        batch: 100,
        grace: HOUR / 2,
    };
    let stop = CancellationToken::new();
    let poller = worker::outcomes::spawn(env.worker.clone(), cfg, stop.clone());

    // An hour of deliveries, evenly spread.
    let started = tokio::time::Instant::now();
    for batch in 0..BATCHES {
        tokio::time::sleep_until(started + HOUR * batch as u32 / BATCHES as u32).await;
        deliver(&env, batch).await?;
    }
    eventually(Duration::from_secs(120), "every verdict", || async {
        let undecided: i64 =
            sqlx::query_scalar("SELECT count(*) FROM conversions WHERE outcome IS NULL")
                .fetch_one(&env.pool)
                .await?;
        Ok(undecided == 0)
    })
    .await?;
    stop.cancel();
    poller.await?;

    let by_outcome: Vec<(String, i64)> = sqlx::query_as(
        "SELECT outcome, count(*) FROM conversions GROUP BY outcome ORDER BY outcome",
    )
    .fetch_all(&env.pool)
    .await?;
    let rejected = (CONVERSIONS / REJECTED_EVERY) as i64;
    assert_eq!(
        by_outcome,
        [
            ("complete".to_owned(), CONVERSIONS as i64 - rejected),
            ("rejected".to_owned(), rejected)
        ]
    );
    let reads = imp.reads();
    let listings = reads.iter().filter(|r| r.kind == ReadKind::Actions).count();
    let single = reads
        .iter()
        .filter(|r| r.kind == ReadKind::Submission)
        .count();
    assert!(
        reads.iter().all(|r| r.status == 200),
        "no request refused (429)"
    );
    // The poller's share of one hour: half of 1,000.
    assert!(
        listings + single <= 500,
        "{listings} listings + {single} single reads for {CONVERSIONS} conversions"
    );
    assert!(single >= rejected as usize, "each rejection read: {single}");
    // The lag is exposed, and back to nothing.
    let lag = shared::db::outcome_sweeps::lag(&env.pool).await?;
    assert_eq!(lag.undecided, 0);
    let text = metrics.render();
    assert!(
        text.contains("worker_submissions_undecided_oldest_seconds"),
        "{text}"
    );
    env.finish().await;
    Ok(())
}
