//! HubSpot's burst limit is per account, and every worker calls HubSpot for
//! the same accounts: the rate window lives in PostgreSQL, so two workers
//! (two `RateBudget`s on one database) together stay under the limit, and a
//! `DAILY` pause one of them met holds the other back too.

use std::time::Duration;

use shared::{
    db,
    hubspot::{Observed, RateBudget},
};

/// HubSpot's headers for a limit of 20 requests per second.
fn headers(remaining: u64) -> Observed {
    Observed {
        max: Some(20),
        interval_ms: Some(1_000),
        remaining: Some(remaining),
        limited: false,
        success: true,
        headerless: false,
    }
}

async fn database() -> anyhow::Result<(String, sqlx::PgPool)> {
    let url = crate::support::e2e::fresh_database().await?;
    let pool = db::connect(&url, 4).await?;
    db::migrate(&pool).await?;
    Ok((url, pool))
}

#[tokio::test]
async fn two_workers_together_stay_under_one_accounts_limit() -> anyhow::Result<()> {
    let (url, pool) = database().await?;
    let workers = [
        std::sync::Arc::new(RateBudget::shared(pool.clone())),
        std::sync::Arc::new(RateBudget::shared(pool.clone())),
    ];
    for w in &workers {
        w.observe("token", headers(20));
    }
    // 95 % of 20 per second, shared: 19.
    let capacity = 19;
    let mut tasks = Vec::new();
    for i in 0..60 {
        let w = workers[i % 2].clone();
        tasks.push(tokio::spawn(async move { w.acquire("token").await }));
    }
    let mut at = Vec::new();
    for t in tasks {
        let slot = t.await?.map_err(|p| anyhow::anyhow!("paused: {p:?}"))?;
        at.push(slot.shared_at().expect("a slot of the shared window"));
    }
    at.sort();
    for i in 0..at.len() - capacity {
        let gap = at[i + capacity] - at[i];
        assert!(
            gap >= chrono::Duration::seconds(1),
            "{} requests within {gap} (slots {i}..={})",
            capacity + 1,
            i + capacity
        );
    }
    assert!(
        at[at.len() - 1] - at[0] >= chrono::Duration::seconds(3),
        "60 requests at 19 per second take three more windows"
    );
    drop(workers);
    pool.close().await;
    crate::support::e2e::drop_database(&url).await;
    Ok(())
}

#[tokio::test]
async fn what_one_worker_learns_holds_the_other_back() -> anyhow::Result<()> {
    let (url, pool) = database().await?;
    let (a, b) = (
        RateBudget::shared(pool.clone()),
        RateBudget::shared(pool.clone()),
    );
    for w in [&a, &b] {
        w.observe("busy", headers(20));
        w.observe("daily", headers(20));
    }
    // Another app of the account spent all but 2 requests of the window:
    // `a` sees it in an answer's headers, `b` may send one more, then waits.
    let slot = a.acquire("busy").await.expect("not paused");
    a.answered("busy", slot, headers(2), None).await;
    let started = std::time::Instant::now();
    for _ in 0..3 {
        b.acquire("busy").await.expect("not paused");
    }
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "the third request waited for the window ({:?})",
        started.elapsed()
    );
    // A DAILY 429 met by `a` pauses the account for `b` too.
    let slot = a.acquire("daily").await.expect("not paused");
    let limited = Observed {
        limited: true,
        success: false,
        ..headers(0)
    };
    a.answered(
        "daily",
        slot,
        limited,
        Some(("DAILY", Duration::from_secs(3_600))),
    )
    .await;
    let paused = b.acquire("daily").await.expect_err("paused for the day");
    assert!(
        paused.retry_after > Duration::from_secs(3_500),
        "{paused:?}"
    );
    pool.close().await;
    crate::support::e2e::drop_database(&url).await;
    Ok(())
}

#[tokio::test]
async fn without_the_database_a_worker_keeps_its_own_window() -> anyhow::Result<()> {
    let unreachable = sqlx::postgres::PgPoolOptions::new()
        .acquire_timeout(Duration::from_millis(500))
        .connect_lazy("postgres://postgres@127.0.0.1:1/none")?;
    let budget = RateBudget::shared(unreachable);
    budget.observe("token", headers(20));
    for _ in 0..19 {
        let slot = budget.acquire("token").await.expect("not paused");
        assert_eq!(slot.shared_at(), None, "a slot of the process's own window");
    }
    Ok(())
}
