//! Activity's conversion search: filters, a search box (OrderId, HubSpot
//! object id or ClickId) and keyset pagination by id through all of a
//! portal's history (newest first: `before` is the last id of the previous
//! page).

use sqlx::{PgPool, Row};

use super::{ConversionItem, stamp};

/// What Activity's form asks for; every field optional.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// An OrderId (exact, or its beginning), a HubSpot object id or a ClickId.
    pub q: Option<String>,
    /// `pending`, `delivered`, `failed`.
    pub status: Option<String>,
    /// impact.com's outcome: `complete`, `rejected`, `duplicate_resend`,
    /// `unknown`, or `queued` (delivered, not known yet).
    pub outcome: Option<String>,
    /// `contacts`, `companies`, `deals`.
    pub object_type: Option<String>,
    /// Recorded on or after this instant.
    pub from: Option<chrono::DateTime<chrono::Utc>>,
    /// Recorded before this instant.
    pub until: Option<chrono::DateTime<chrono::Utc>>,
}

/// A page of conversions: newest first, ids below `before`.
pub async fn conversions(
    pool: &PgPool,
    portal: i64,
    f: &Filter,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<ConversionItem>, sqlx::Error> {
    let q = f.q.as_deref().map(str::trim).filter(|q| !q.is_empty());
    let object_id = q.and_then(|q| q.parse::<i64>().ok());
    // LIKE's own characters are searched literally.
    let prefix = q.map(|q| {
        let esc = q
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        format!("{esc}%")
    });
    let click = q.map(|q| serde_json::json!([["ClickId", q]]));
    let rows = sqlx::query(
        "SELECT c.id, c.status, c.object_type, c.object_id, c.event_type, c.order_id, c.queued_uri,
                c.failure_reason, c.outcome, c.error_type, c.error_reason, c.updated_at, c.created_at,
                c.attempts, c.payload, m.survivor_id AS merged_into
         FROM conversions c
         LEFT JOIN object_merges m ON m.portal_id = c.portal_id
             AND m.object_type = c.object_type AND m.merged_id = c.object_id
         WHERE c.portal_id = $1
           AND ($2::bigint IS NULL OR c.id < $2)
           AND ($3::text IS NULL OR c.order_id LIKE $4 OR c.object_id = $5 OR c.payload::jsonb @> $6)
           AND ($7::text IS NULL OR c.status = $7)
           AND ($8::text IS NULL OR c.outcome = $8
                OR ($8 = 'queued' AND c.status = 'delivered' AND c.outcome IS NULL))
           AND ($9::text IS NULL OR c.object_type = $9)
           AND ($10::timestamptz IS NULL OR c.created_at >= $10)
           AND ($11::timestamptz IS NULL OR c.created_at < $11)
         ORDER BY c.id DESC LIMIT $12",
    )
    .bind(portal)
    .bind(before)
    .bind(q)
    .bind(prefix)
    .bind(object_id)
    .bind(click)
    .bind(f.status.as_deref())
    .bind(f.outcome.as_deref())
    .bind(f.object_type.as_deref())
    .bind(f.from)
    .bind(f.until)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.into_iter().map(|r| item(&r)).collect()
}

/// A conversion row as Activity lists it.
pub(super) fn item(r: &sqlx::postgres::PgRow) -> Result<ConversionItem, sqlx::Error> {
    let payload: serde_json::Value = r.try_get("payload")?;
    let params: Vec<(String, String)> = serde_json::from_value(payload).unwrap_or_default();
    Ok(ConversionItem {
        id: r.try_get("id")?,
        status: r.try_get("status")?,
        object_type: r.try_get("object_type")?,
        object_id: r.try_get("object_id")?,
        event_type: r.try_get("event_type")?,
        order_id: r.try_get("order_id")?,
        queued_uri: r.try_get("queued_uri")?,
        failure_reason: r.try_get("failure_reason")?,
        outcome: r.try_get("outcome")?,
        error_type: r.try_get("error_type")?,
        error_reason: r.try_get("error_reason")?,
        updated_at: stamp(r.try_get("updated_at")?),
        merged_into: r.try_get("merged_into")?,
        created_at: Some(stamp(r.try_get("created_at")?)),
        attempts: Some(r.try_get("attempts")?),
        click_id: params
            .into_iter()
            .find(|(k, _)| k == "ClickId")
            .map(|(_, v)| v),
    })
}
