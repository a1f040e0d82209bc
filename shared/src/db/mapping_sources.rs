//! Each field's source as the conversion page shows it, kept once per
//! portal and distinct text (migration
//! `20261208000200_mapping_sources.sql`); conversions point at it
//! (`conversions.sources_id`).

use sqlx::PgExecutor;

/// The id of `sources` (a JSON object: field → where its value came from)
/// for `portal`, stored if new.
pub async fn store<'e>(
    db: impl PgExecutor<'e>,
    portal: i64,
    sources: &serde_json::Value,
) -> Result<i64, sqlx::Error> {
    // DO UPDATE (of nothing that changes) rather than DO NOTHING, so that
    // the row is returned when it exists, even when a concurrent
    // statement is inserting it.
    sqlx::query_scalar(
        "INSERT INTO mapping_sources (portal_id, sources) VALUES ($1, $2)
         ON CONFLICT (portal_id, md5(sources::text)) DO UPDATE SET portal_id = EXCLUDED.portal_id
         RETURNING id",
    )
    .bind(portal)
    .bind(sqlx::types::Json(sources))
    .fetch_one(db)
    .await
}
