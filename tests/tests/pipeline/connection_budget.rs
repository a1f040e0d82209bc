//! The PostgreSQL connection budget (issue 22, item 3): a worker's pool is
//! small, named, and waits for a connection rather than failing; at start
//! it reads what the server allows (`shared::db::budget`).

use std::time::{Duration, Instant};

use shared::db::budget::{self, ServerLimits};
use tools::support;

#[tokio::test]
async fn a_worker_opens_a_small_named_pool_and_reads_the_servers_limit() -> anyhow::Result<()> {
    let mut settings = support::test_settings();
    settings.database_url = support::fresh_database().await?;
    settings.encryption_key = Some(secrecy::SecretString::from(support::KEY));
    let worker = worker::Worker::connect(&settings).await?;
    let options = worker.pool.options();
    assert_eq!(options.get_max_connections(), 8, "the default pool");
    assert_eq!(options.get_acquire_timeout(), Duration::from_secs(120));

    // Its connections carry its name, so workers can be counted.
    let named: Vec<String> = sqlx::query_scalar(
        "SELECT application_name FROM pg_stat_activity WHERE datname = current_database()",
    )
    .fetch_all(&worker.pool)
    .await?;
    let mine = format!("connector-worker {}", std::process::id());
    assert!(
        named.iter().any(|n| n.starts_with("connector-worker ")
            && n.ends_with(&format!(" {}", std::process::id()))),
        "{named:?} has none like {mine}"
    );
    let limits = ServerLimits::read(&worker.pool).await?;
    assert!(limits.max_connections > 0);
    assert!(limits.workers_connected >= 1, "{limits:?}");
    assert!(limits.connected >= 1, "{limits:?}");
    worker.pool.close().await;
    support::drop_database(&settings.database_url).await;
    Ok(())
}

#[tokio::test]
async fn a_query_waits_for_a_busy_pools_connection_instead_of_failing() -> anyhow::Result<()> {
    let url = support::fresh_database().await?;
    let pool = shared::db::connect_named(&url, "budget-test", 1, Duration::from_secs(30)).await?;
    let held = pool.acquire().await?;
    let started = Instant::now();
    let waiting = {
        let pool = pool.clone();
        tokio::spawn(async move {
            sqlx::query_scalar::<_, i32>("SELECT 1")
                .fetch_one(&pool)
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(
        !waiting.is_finished(),
        "the query waits while the pool is busy"
    );
    drop(held);
    assert_eq!(waiting.await??, 1, "then it runs");
    assert!(started.elapsed() >= Duration::from_millis(700));
    pool.close().await;
    support::drop_database(&url).await;
    Ok(())
}

#[test]
fn the_plan_counts_ingest_only_when_it_reads_secrets_from_the_database() {
    let mut s = support::test_settings();
    s.expected_workers = 8;
    s.webhook_secrets_db = true;
    let with = worker::budget::plan(&s, s.expected_workers);
    assert_eq!(
        (with.total(), with.ingest),
        (8 * 8 + 4 + budget::INGEST_CONNECTIONS, 2)
    );
    s.webhook_secrets_db = false;
    assert_eq!(worker::budget::plan(&s, 8).total(), 68);
}
