//! Delivering to impact.com holds no database transaction open while
//! impact.com answers (issue 20, item 8), and still never sends one
//! conversion twice at once: the delivery's rows are locked with advisory
//! locks held by a connection (`shared::db::delivery_lock`), not row locks
//! of a transaction.

use std::time::Duration;

use crate::support::e2e::{PORTAL, WorkerEnv, seed_deal_mappings};
use sandbox::ObjectType;
use serde_json::json;
use sqlx::PgPool;
use worker::{EventResult, MessageOutcome};

/// The most connections of this test's database seen `idle in transaction`
/// over `for_how_long`.
async fn idle_in_transaction(pool: &PgPool, for_how_long: Duration) -> anyhow::Result<i64> {
    let mut seen = 0;
    let until = std::time::Instant::now() + for_how_long;
    while std::time::Instant::now() < until {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity
             WHERE datname = current_database() AND state LIKE 'idle in transaction%'",
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
    let env = WorkerEnv::start().await?;
    env.apply(json!({
        "triggers": { "deals": { "on_change": ["dealstage"] } },
        "mappings": { "deals": seed_deal_mappings() }
    }))
    .await?;
    let hs = env.sandbox.hubspot();
    let contact = hs.create_contact(PORTAL, [("email", "lock@example.com")])?;
    let deal = hs.create_deal(
        PORTAL,
        [("amount", "100.00"), ("deal_currency_code", "USD")],
        vec![],
        Some(contact),
    )?;
    env.new_events();
    hs.set_property(PORTAL, ObjectType::Deals, deal, "dealstage", "closedwon")?;
    let events = env.new_events();
    env.sandbox
        .impact()
        .set_latency(Duration::from_millis(1500));

    // The same event twice at once (a redelivery racing the first): the
    // second waits for the first's lock, then finds it delivered.
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
