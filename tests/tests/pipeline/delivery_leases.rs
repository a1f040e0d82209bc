//! Delivering to impact.com holds no database transaction (and no
//! connection) open while impact.com answers, and still never sends one
//! conversion twice at once: the delivery's rows are leased
//! (`shared::db::delivery_lease`: a token and an expiry on the row, renewed
//! while the delivery runs), not locked by a transaction or a session.

use std::time::{Duration, Instant};

use crate::support::e2e::{PORTAL, WorkerEnv};
use domain::failure::FailureReason;
use sandbox::{ObjectType, WebhookEvent, impact::Fault};
use serde_json::json;
use sqlx::PgPool;
use worker::{EventResult, MessageMeta, MessageOutcome, Worker};

/// The most connections of this test's database seen `idle in transaction`
/// for longer than 300 ms (a transaction held across impact.com's 1.5 s
/// answer; not the instants between a short transaction's statements, which
/// a loaded machine stretches) over `for_how_long`.
async fn idle_in_transaction(pool: &PgPool, for_how_long: Duration) -> anyhow::Result<i64> {
    let mut seen = 0;
    let until = std::time::Instant::now() + for_how_long;
    while std::time::Instant::now() < until {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity
             WHERE datname = current_database() AND state LIKE 'idle in transaction%'
               AND clock_timestamp() - state_change > interval '300 milliseconds'",
        )
        .fetch_one(pool)
        .await?;
        seen = seen.max(n);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(seen)
}

#[tokio::test]
async fn a_slow_impact_com_holds_no_transaction_and_a_conversion_is_sent_once() -> anyhow::Result<()>
{
    let (env, events) = won_deal().await?;
    env.sandbox
        .impact()
        .set_latency(Duration::from_millis(1500));

    // The same event twice at once (a redelivery racing the first): the
    // second waits for the first's lease, then finds it delivered.
    let first = env.process(&events);
    let second = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        env.process(&events).await
    };
    let watch = idle_in_transaction(&env.pool, Duration::from_millis(1200));
    let (first, second, seen) = tokio::join!(first, second, watch);
    assert_eq!(seen?, 0, "a transaction was open while impact.com answered");
    let results: Vec<EventResult> = [first, second]
        .into_iter()
        .flat_map(|o| match o {
            MessageOutcome::Done(r) => r,
            other => panic!("expected Done, got {other:?}"),
        })
        .collect();
    assert_eq!(
        results
            .iter()
            .filter(|r| matches!(r, EventResult::Delivered { .. }))
            .count(),
        1,
        "{results:?}"
    );
    assert_eq!(env.submissions().len(), 1, "posted once");
    env.finish().await;
    Ok(())
}

/// A worker environment whose deal (seed deal mappings, a trigger on
/// `dealstage`) was just moved to `closedwon`, and that move's events.
async fn won_deal() -> anyhow::Result<(WorkerEnv, Vec<WebhookEvent>)> {
    let (env, deal) = crate::idempotency::deal_env(json!({ "on_change": ["dealstage"] })).await?;
    env.sandbox.hubspot().set_property(
        PORTAL,
        ObjectType::Deals,
        deal,
        "dealstage",
        "closedwon",
    )?;
    let events = env.new_events();
    Ok((env, events))
}

/// A worker of `env`'s settings with a delivery lease of `secs`.
fn worker_with_lease(env: &WorkerEnv, secs: u64) -> anyhow::Result<Worker> {
    let mut settings = env.settings.clone();
    settings.delivery_lease_secs = secs;
    Worker::new(&settings, env.pool.clone())
}

async fn process_with(w: &Worker, events: &[WebhookEvent]) -> MessageOutcome {
    let body = serde_json::to_vec(events).expect("serialisable");
    worker::process_message(w, &body, MessageMeta::default()).await
}

fn retried_busy(outcome: &MessageOutcome) -> bool {
    matches!(outcome, MessageOutcome::Retry(f) if f.reason == FailureReason::DeliveryBusy)
}

#[tokio::test]
async fn a_dead_workers_lease_runs_out_and_the_conversion_is_then_sent_once() -> anyhow::Result<()>
{
    let (env, events) = won_deal().await?;
    // The first delivery fails transiently: the conversion stays pending.
    env.sandbox.impact().fail_next([Fault::ServerError(503)]);
    let first = env.process(&events).await;
    assert!(matches!(first, MessageOutcome::Retry(_)), "{first:?}");
    let id: i64 = sqlx::query_scalar("SELECT id FROM conversions WHERE status = 'pending'")
        .fetch_one(&env.pool)
        .await?;
    // A worker took its lease and died (its lease was never cleared).
    sqlx::query(
        "UPDATE conversions SET lease_owner = gen_random_uuid(),
             lease_until = clock_timestamp() + interval '3 seconds' WHERE id = $1",
    )
    .bind(id)
    .execute(&env.pool)
    .await?;
    let died = Instant::now();
    let posted = env.sandbox.impact().requests().len();

    // The retry waits a third of its lease (1 s), then gives the message
    // back: nothing is posted while the dead worker's lease lasts.
    let w = worker_with_lease(&env, 3)?;
    let started = Instant::now();
    let busy = process_with(&w, &events).await;
    assert!(retried_busy(&busy), "{busy:?}");
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert_eq!(env.sandbox.impact().requests().len(), posted);

    // Once it has run out, the next retry sends the conversion, once.
    tokio::time::sleep(Duration::from_secs(3).saturating_sub(died.elapsed())).await;
    let done = process_with(&w, &events).await;
    assert!(
        matches!(&done, MessageOutcome::Done(r) if matches!(r[..], [EventResult::Delivered { .. }])),
        "{done:?}"
    );
    assert_eq!(env.submissions().len(), 1, "sent once");
    let (status, owner): (String, Option<uuid::Uuid>) =
        sqlx::query_as("SELECT status, lease_owner FROM conversions WHERE id = $1")
            .bind(id)
            .fetch_one(&env.pool)
            .await?;
    assert_eq!(
        (status.as_str(), owner),
        ("delivered", None),
        "the lease is cleared with the answer"
    );
    env.finish().await;
    Ok(())
}

#[tokio::test]
async fn a_live_delivery_renews_its_lease_however_slow_impact_com_is() -> anyhow::Result<()> {
    let (env, events) = won_deal().await?;
    // impact.com answers after 4.5 s; the lease lasts 3 s unless renewed.
    env.sandbox
        .impact()
        .set_latency(Duration::from_millis(4500));
    let holder = worker_with_lease(&env, 3)?;
    let other = worker_with_lease(&env, 3)?;
    let first = process_with(&holder, &events);
    let second = async {
        // Past the first lease's unrenewed expiry, and still refused.
        tokio::time::sleep(Duration::from_millis(3300)).await;
        process_with(&other, &events).await
    };
    let (first, second) = tokio::join!(first, second);
    assert!(
        matches!(&first, MessageOutcome::Done(r) if matches!(r[..], [EventResult::Delivered { .. }])),
        "{first:?}"
    );
    assert!(retried_busy(&second), "{second:?}");
    assert_eq!(env.submissions().len(), 1, "posted once");
    // The retry finds it delivered.
    env.sandbox.impact().set_latency(Duration::ZERO);
    let again = process_with(&other, &events).await;
    assert!(
        matches!(&again, MessageOutcome::Done(r) if r.iter().all(|r| !matches!(r, EventResult::Delivered { .. }))),
        "{again:?}"
    );
    assert_eq!(env.submissions().len(), 1);
    env.finish().await;
    Ok(())
}
