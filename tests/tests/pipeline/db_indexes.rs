//! Every query on `webhook_events` — the table that takes a row per event —
//! is served by one of its few indexes (migration 000010): the identity
//! serves the dedupe lookups, an object's events and a portal's events; a
//! BRIN index the retention and subscription scans by `processed_at`; a
//! partial index the converted events by conversion.

use sqlx::{PgPool, Row};

/// The plan of `sql` with sequential scans ruled out where an index can
/// serve: the index names it uses.
async fn plan(pool: &PgPool, sql: &str) -> anyhow::Result<String> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET LOCAL enable_seqscan = off")
        .execute(&mut *tx)
        .await?;
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!("EXPLAIN {sql}")))
        .fetch_all(&mut *tx)
        .await?;
    let plan: Vec<String> = rows.iter().map(|r| r.get::<String, _>(0)).collect();
    Ok(plan.join("\n"))
}

/// Asserts that `index` serves `sql`; returns the plan.
async fn served_by(pool: &PgPool, sql: &str, index: &str) -> anyhow::Result<String> {
    let plan = plan(pool, sql).await?;
    assert!(
        plan.contains(index),
        "{index} does not serve {sql}:\n{plan}"
    );
    Ok(plan)
}

#[tokio::test]
async fn webhook_event_queries_use_the_slim_indexes() -> anyhow::Result<()> {
    let url = crate::support::e2e::fresh_database().await?;
    let pool = shared::db::connect(&url, 2).await?;
    shared::db::migrate(&pool).await?;
    // Some history, so that the planner has rows to weigh.
    sqlx::query(
        "INSERT INTO webhook_events (portal_id, event_id, subscription_type, object_id, occurred_at,
             property_name, status, conversion_id, event)
         SELECT 77, g, 'contact.creation', g % 500, g, '', CASE WHEN g % 2 = 0 THEN 'converted' ELSE 'ignored' END,
             CASE WHEN g % 2 = 0 THEN g END, '{}'
         FROM generate_series(1, 5000) g",
    )
    .execute(&pool)
    .await?;
    sqlx::query("ANALYZE webhook_events").execute(&pool).await?;

    let indexes: Vec<String> = sqlx::query_scalar(
        "SELECT indexname FROM pg_indexes WHERE tablename = 'webhook_events' ORDER BY indexname",
    )
    .fetch_all(&pool)
    .await?;
    assert_eq!(
        indexes,
        [
            "webhook_events_conversion",
            "webhook_events_identity",
            "webhook_events_pkey",
            "webhook_events_processed"
        ]
    );

    let dedupe = served_by(
        &pool,
        "SELECT 1 FROM webhook_events e WHERE e.portal_id = 77 AND e.event_id IS NOT DISTINCT FROM 42
           AND e.subscription_type = 'contact.creation' AND e.object_id = 42 AND e.occurred_at = 42
           AND e.property_name = ''",
        "webhook_events_identity",
    )
    .await?;
    assert!(
        dedupe
            .contains("Index Cond: ((portal_id = 77) AND (object_id = 42) AND (occurred_at = 42)"),
        "the lookup narrows to the object's events: {dedupe}"
    );

    served_by(
        &pool,
        "SELECT id FROM webhook_events WHERE portal_id = 77 AND object_id = 42 AND subscription_type LIKE 'contact.%'",
        "webhook_events_identity",
    )
    .await?;

    served_by(
        &pool,
        "SELECT id FROM webhook_events WHERE processed_at < now() - make_interval(days => 30)",
        "webhook_events_processed",
    )
    .await?;

    served_by(
        &pool,
        "SELECT id FROM webhook_events WHERE conversion_id IN (SELECT g FROM generate_series(1, 10) g)",
        "webhook_events_conversion",
    )
    .await?;

    // The partial index holds the converted events only.
    let entries: i64 =
        sqlx::query_scalar("SELECT count(*) FROM webhook_events WHERE conversion_id IS NOT NULL")
            .fetch_one(&pool)
            .await?;
    assert_eq!(entries, 2500);
    Ok(())
}
