//! Each field's source is stored once per portal and configuration
//! (`mapping_sources`); the worker's cache asks PostgreSQL once per
//! configuration, however many events of it arrive at once.

use std::sync::Arc;

use domain::events::PortalId;
use serde_json::json;
use worker::pipeline::sources::SourcesCache;

#[tokio::test(flavor = "multi_thread")]
async fn a_new_configurations_sources_are_stored_once_for_many_events_at_once() -> anyhow::Result<()>
{
    let url = crate::support::e2e::fresh_database().await?;
    let pool = shared::db::connect(&url, 8).await?;
    shared::db::migrate(&pool).await?;
    for portal in [77, 78] {
        sqlx::query(
            "INSERT INTO portals (portal_id, hubspot_auth_kind) VALUES ($1, 'private_app')",
        )
        .bind(portal)
        .execute(&pool)
        .await?;
    }
    // A second store of a stored text (an upsert's update) fails the call.
    for sql in [
        "CREATE FUNCTION stored_twice() RETURNS trigger LANGUAGE plpgsql
         AS $$ BEGIN RAISE EXCEPTION 'the same sources were stored twice'; END $$",
        "CREATE TRIGGER stored_twice BEFORE UPDATE ON mapping_sources
         FOR EACH ROW EXECUTE FUNCTION stored_twice()",
    ] {
        sqlx::query(sql).execute(&pool).await?;
    }
    let cache = Arc::new(SourcesCache::default());
    let contacts = json!({"OrderId": "hs_object_id", "Text1": "constant \"Hardware\""});
    let deals = json!({"OrderId": "deal_[stage]_id"});
    // All at once, as the events of a message are.
    let calls: Vec<_> = (0..60)
        .map(|i| {
            let (cache, pool) = (Arc::clone(&cache), pool.clone());
            let (portal, sources) = match i % 3 {
                0 => (77, contacts.clone()),
                1 => (77, deals.clone()),
                _ => (78, contacts.clone()),
            };
            tokio::spawn(async move { cache.id(&pool, PortalId(portal), &sources).await })
        })
        .collect();
    let mut ids = Vec::new();
    for call in calls {
        ids.push(call.await??);
    }
    let distinct: std::collections::BTreeSet<i64> = ids.iter().copied().collect();
    assert_eq!(distinct.len(), 3, "one id per portal and text: {ids:?}");
    let stored: Vec<(i64, serde_json::Value)> =
        sqlx::query_as("SELECT portal_id, sources FROM mapping_sources ORDER BY id")
            .fetch_all(&pool)
            .await?;
    assert_eq!(stored.len(), 3, "{stored:?}");
    assert!(stored.contains(&(78, contacts.clone())));

    // Cached: asked again, nothing is written.
    assert_eq!(cache.id(&pool, PortalId(78), &contacts).await?, ids[2]);
    pool.close().await;
    crate::support::e2e::drop_database(&url).await;
    Ok(())
}
