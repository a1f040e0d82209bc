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
    pool.close().await;
    crate::support::e2e::drop_database(&url).await;
    Ok(())
}

/// Conversions' columns that a first delivery changes
/// (`shared::db::conversions::mark_delivered_many`).
const SET_BY_A_DELIVERY: &[&str] = &[
    "status",
    "queued_uri",
    "attempts",
    "failure_reason",
    "delivered_at",
    "updated_at",
    "first_attempt_at",
    "first_attempt_ms",
    "lease_owner",
    "lease_until",
];

/// A fresh, migrated database with portal 77, and its URL (to drop it).
async fn with_portal() -> anyhow::Result<(PgPool, String)> {
    let url = crate::support::e2e::fresh_database().await?;
    let pool = shared::db::connect(&url, 2).await?;
    shared::db::migrate(&pool).await?;
    sqlx::query("INSERT INTO portals (portal_id, hubspot_auth_kind) VALUES (77, 'private_app')")
        .execute(&pool)
        .await?;
    Ok((pool, url))
}

/// Pending conversions of portal 77, ids `ids`, recorded `age` ago (a
/// millisecond apart, in id order), their payloads of a real conversion's
/// size (about 700 bytes).
async fn pending(
    pool: &PgPool,
    ids: std::ops::RangeInclusive<i64>,
    age: &str,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO conversions (id, portal_id, event_type, order_id, object_type, object_id, payload, created_at)
         SELECT g, 77, 'Lead', 'o' || g, 'contacts', g,
             jsonb_build_array(jsonb_build_array('OrderId', 'o' || g), jsonb_build_array('Text1', repeat('x', 600))),
             now() - $3::interval + g * interval '1 millisecond'
         FROM generate_series($1::bigint, $2::bigint) g",
    )
    .bind(ids.start())
    .bind(ids.end())
    .bind(age)
    .execute(pool)
    .await?;
    Ok(())
}

fn delivered(
    ids: std::ops::RangeInclusive<i64>,
    uri: bool,
) -> Vec<shared::db::conversions::Delivered> {
    ids.map(|id| shared::db::conversions::Delivered {
        id,
        queued_uri: uri.then(|| format!("/Advertisers/A/APISubmissions/{id}")),
        first_attempt_ms: Some(12),
    })
    .collect()
}

/// Marking conversions delivered is a HOT update (no index entry, same
/// page): no index of `conversions` reads a column the delivery sets, and
/// the table's pages leave room for the new versions.
#[tokio::test]
async fn marking_conversions_delivered_is_a_hot_update() -> anyhow::Result<()> {
    let (pool, url) = with_portal().await?;

    let defs: Vec<String> =
        sqlx::query_scalar("SELECT indexdef FROM pg_indexes WHERE tablename = 'conversions'")
            .fetch_all(&pool)
            .await?;
    for def in &defs {
        for column in SET_BY_A_DELIVERY {
            let words = def.split(|c: char| !(c.is_alphanumeric() || c == '_'));
            assert!(
                !words.clone().any(|w| w == *column),
                "{def} reads {column}, which a delivery sets: the update could not be HOT"
            );
        }
    }

    pending(&pool, 1..=300, "1 second").await?;
    shared::db::conversions::mark_delivered_many(&pool, &delivered(1..=300, true)).await?;
    // Statistics reach the views a moment after the commit.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let (updates, hot) = loop {
        let (updates, hot): (i64, i64) = sqlx::query_as(
            "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = 'conversions'",
        )
        .fetch_one(&pool)
        .await?;
        if updates >= 300 || std::time::Instant::now() > deadline {
            break (updates, hot);
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert_eq!((updates, hot), (300, 300), "every delivered update is HOT");

    // The first attempt is kept in the row, and listed with the others.
    let (kept, listed): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM delivery_attempts),
                (SELECT count(*) FROM conversion_attempts WHERE http_status = 200 AND duration_ms = 12)",
    )
    .fetch_one(&pool)
    .await?;
    assert_eq!((kept, listed), (0, 300));
    pool.close().await;
    crate::support::e2e::drop_database(&url).await;
    Ok(())
}

/// The outcome poller's work list: first looks by recording time among
/// rows never claimed, later looks by due time, both from
/// `conversions_outcome_due`; rows with nothing to look at leave the first
/// range, and come back when delivered.
#[tokio::test]
async fn the_outcome_work_list_finds_what_is_due_and_retires_what_is_not() -> anyhow::Result<()> {
    use shared::db::outcomes::{claim_due, retire_unlookable};
    let (pool, url) = with_portal().await?;
    // 1-3: delivered two hours ago; 4: recorded two hours ago, delivered
    // now; 5: failed; 6: delivered without a QueuedUri; 7: delivered now.
    pending(&pool, 1..=6, "2 hours").await?;
    pending(&pool, 7..=7, "1 second").await?;
    shared::db::conversions::mark_delivered_many(&pool, &delivered(1..=4, true)).await?;
    sqlx::query(
        "UPDATE conversions SET delivered_at = now() - interval '2 hours' + id * interval '1 millisecond'
         WHERE id <= 3",
    )
        .execute(&pool)
        .await?;
    sqlx::query("UPDATE conversions SET status = 'failed' WHERE id = 5")
        .execute(&pool)
        .await?;
    shared::db::conversions::mark_delivered_many(&pool, &delivered(6..=6, false)).await?;
    shared::db::conversions::mark_delivered_many(&pool, &delivered(7..=7, true)).await?;
    sqlx::query("ANALYZE conversions").execute(&pool).await?;

    assert_eq!(
        retire_unlookable(&pool, 3600, 100).await?,
        2,
        "the failed one and the one without a QueuedUri"
    );
    let claim = |limit| {
        let pool = pool.clone();
        async move {
            let mut ids: Vec<i64> = claim_due(&pool, 3600, 300, limit)
                .await?
                .iter()
                .map(|d| d.id)
                .collect();
            ids.sort_unstable();
            Ok::<_, sqlx::Error>(ids)
        }
    };
    let mut claimed = claim(2).await?;
    assert_eq!(claimed, [1, 2], "oldest first, at most the limit");
    claimed = claim(10).await?;
    assert_eq!(
        claimed,
        [3],
        "4 and 7 were delivered less than the first look ago; 1 and 2 are leased"
    );
    // A later look is due when its time comes.
    sqlx::query(
        "UPDATE conversions SET outcome_next_check_at = now() - interval '1 second' WHERE id = 1",
    )
    .execute(&pool)
    .await?;
    claimed = claim(10).await?;
    assert_eq!(claimed, [1]);
    // A replay delivers the failed conversion: back in the first range,
    // looked at one first look after this delivery.
    shared::db::conversions::mark_delivered_many(&pool, &delivered(5..=5, true)).await?;
    assert!(claim(10).await?.is_empty());
    sqlx::query("UPDATE conversions SET delivered_at = now() - interval '2 hours' WHERE id = 5")
        .execute(&pool)
        .await?;
    claimed = claim(10).await?;
    assert_eq!(claimed, [5]);

    for (sql, what) in [
        (
            "SELECT id FROM conversions WHERE outcome IS NULL AND outcome_next_check_at <= now()
               AND status = 'delivered' ORDER BY outcome_next_check_at LIMIT 10",
            "later looks",
        ),
        (
            "SELECT id FROM conversions WHERE outcome IS NULL AND outcome_next_check_at IS NULL
               AND created_at <= now() - interval '1 hour' AND status = 'delivered'
             ORDER BY created_at LIMIT 10",
            "first looks",
        ),
    ] {
        let plan = served_by(&pool, sql, "conversions_outcome_due").await?;
        assert!(
            plan.contains("Index Cond"),
            "{what} narrow the index's range:\n{plan}"
        );
    }
    pool.close().await;
    crate::support::e2e::drop_database(&url).await;
    Ok(())
}
