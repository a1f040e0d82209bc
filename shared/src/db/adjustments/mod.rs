//! The `adjustments` table: reversals and modifications of delivered
//! conversions, one row per (conversion, kind, triggering event).

use chrono::{DateTime, Utc};
use domain::status::DeliveryStatus;
use serde::Serialize;
use sqlx::{PgExecutor, PgPool, Row, postgres::PgRow};

use domain::object_type::ObjectType;

/// One adjustment as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AdjustmentRow {
    /// Row id.
    pub id: i64,
    /// The portal.
    pub portal_id: i64,
    /// The conversion it adjusts.
    pub conversion_id: i64,
    /// `reversal` or `modification`.
    pub kind: String,
    /// Object type of the conversion.
    pub object_type: String,
    /// The HubSpot record.
    pub object_id: i64,
    /// Why (`dealstage=closedlost`, `deleted`, `amount=1500`).
    pub cause: String,
    /// The form sent, in order.
    pub form: Vec<(String, String)>,
    /// Modifications: the Amount sent.
    pub amount: Option<String>,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    /// Attempts that reached impact.com (or failed trying).
    pub attempts: i32,
    /// impact.com's QueuedUri.
    pub queued_uri: Option<String>,
    /// Reason code of the last failure.
    pub failure_reason: Option<String>,
    /// The last error.
    pub last_error: Option<String>,
    /// When it was recorded.
    pub created_at: DateTime<Utc>,
    /// When impact.com queued it.
    pub delivered_at: Option<DateTime<Utc>>,
}

impl AdjustmentRow {
    /// Where it stands with impact.com (`None`: a name this version does
    /// not know).
    pub fn delivery_status(&self) -> Option<DeliveryStatus> {
        self.status.parse().ok()
    }
}

pub(super) const COLUMNS: &str =
    "id, portal_id, conversion_id, kind, object_type, object_id, cause, form,
    amount, status, attempts, queued_uri, failure_reason, last_error, created_at, delivered_at";

pub(super) fn from_row(r: &PgRow) -> AdjustmentRow {
    AdjustmentRow {
        id: r.get("id"),
        portal_id: r.get("portal_id"),
        conversion_id: r.get("conversion_id"),
        kind: r.get("kind"),
        object_type: r.get("object_type"),
        object_id: r.get("object_id"),
        cause: r.get("cause"),
        form: serde_json::from_value(r.get("form")).unwrap_or_default(),
        amount: r.get("amount"),
        status: r.get("status"),
        attempts: r.get("attempts"),
        queued_uri: r.get("queued_uri"),
        failure_reason: r.get("failure_reason"),
        last_error: r.get("last_error"),
        created_at: r.get("created_at"),
        delivered_at: r.get("delivered_at"),
    }
}

/// A conversion impact.com queued: its id and the parameters sent.
pub type DeliveredConversion = (i64, Vec<(String, String)>);

/// The object's delivered conversions, oldest first: those of the record
/// it is part of now and of every id merged into that record
/// (`object_merges`), so a merged deal's earlier conversions are adjusted
/// with it.
pub async fn delivered_conversions<'e>(
    db: impl PgExecutor<'e>,
    portal: i64,
    object_type: ObjectType,
    object_id: i64,
) -> Result<Vec<DeliveredConversion>, sqlx::Error> {
    let rows = sqlx::query(
        "WITH s AS (
             SELECT coalesce((SELECT survivor_id FROM object_merges
                 WHERE portal_id = $1 AND object_type = $2 AND merged_id = $3), $3) AS id
         ), g AS (
             SELECT id FROM s
             UNION SELECT m.merged_id FROM object_merges m, s
             WHERE m.portal_id = $1 AND m.object_type = $2 AND m.survivor_id = s.id
         )
         SELECT id, payload FROM conversions WHERE portal_id = $1 AND object_type = $2
             AND object_id IN (SELECT id FROM g) AND status = 'delivered' ORDER BY id",
    )
    .bind(portal)
    .bind(object_type.as_str())
    .bind(object_id)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let params = serde_json::from_value(r.get("payload")).unwrap_or_default();
            (r.get("id"), params)
        })
        .collect())
}

/// The adjustment a given event made of a conversion, if any.
pub async fn find<'e>(
    db: impl PgExecutor<'e>,
    conversion: i64,
    kind: &str,
    event_key: &str,
) -> Result<Option<AdjustmentRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM adjustments WHERE conversion_id = $1 AND kind = $2 AND event_key = $3"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(conversion)
        .bind(kind)
        .bind(event_key)
        .fetch_optional(db)
        .await?;
    Ok(row.as_ref().map(from_row))
}

/// Whether a reversal of the conversion was sent (or is being sent).
pub async fn reversed<'e>(db: impl PgExecutor<'e>, conversion: i64) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM adjustments WHERE conversion_id = $1
             AND kind = 'reversal' AND status IN ('pending', 'delivered'))",
    )
    .bind(conversion)
    .fetch_one(db)
    .await
}

/// The Amount of the latest modification sent (or being sent), if any.
pub async fn last_amount<'e>(
    db: impl PgExecutor<'e>,
    conversion: i64,
) -> Result<Option<String>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT amount FROM adjustments WHERE conversion_id = $1 AND kind = 'modification'
             AND status IN ('pending', 'delivered') ORDER BY id DESC LIMIT 1",
    )
    .bind(conversion)
    .fetch_optional(db)
    .await?;
    Ok(row.and_then(|r| r.get("amount")))
}

/// An adjustment to record.
#[derive(Debug, Clone)]
pub struct NewAdjustment<'a> {
    /// The portal.
    pub portal_id: i64,
    /// The conversion.
    pub conversion_id: i64,
    /// `reversal` or `modification`.
    pub kind: &'a str,
    /// The triggering event's identity.
    pub event_key: &'a str,
    /// Object type.
    pub object_type: ObjectType,
    /// The record.
    pub object_id: i64,
    /// Why.
    pub cause: &'a str,
    /// The form to send.
    pub form: &'a [(String, String)],
    /// Modifications: the Amount.
    pub amount: Option<&'a str>,
}

/// Records an adjustment under its key; an existing row of the same key is
/// returned as is. `None`: another event's reversal of the conversion got
/// there first (a conversion is reversed at most once).
pub async fn record(
    pool: &PgPool,
    a: &NewAdjustment<'_>,
) -> Result<Option<AdjustmentRow>, sqlx::Error> {
    let sql = format!(
        "INSERT INTO adjustments (portal_id, conversion_id, kind, event_key, object_type, object_id,
             cause, form, amount)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT DO NOTHING
         RETURNING {COLUMNS}"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(a.portal_id)
        .bind(a.conversion_id)
        .bind(a.kind)
        .bind(a.event_key)
        .bind(a.object_type.as_str())
        .bind(a.object_id)
        .bind(a.cause)
        .bind(serde_json::to_value(a.form).unwrap_or_default())
        .bind(a.amount)
        .fetch_optional(pool)
        .await?;
    match row {
        Some(row) => Ok(Some(from_row(&row))),
        None => find(pool, a.conversion_id, a.kind, a.event_key).await,
    }
}

/// Reads an adjustment for sending (its delivery lease held:
/// `crate::db::delivery_lease`).
pub async fn read<'e>(
    db: impl PgExecutor<'e>,
    id: i64,
) -> Result<Option<AdjustmentRow>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM adjustments WHERE id = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(db)
        .await?;
    Ok(row.as_ref().map(from_row))
}

/// impact.com queued it.
pub async fn mark_delivered<'e>(
    db: impl PgExecutor<'e>,
    id: i64,
    queued_uri: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE adjustments SET status = 'delivered', queued_uri = $2, attempts = attempts + 1,
             failure_reason = NULL, delivered_at = clock_timestamp(), updated_at = now(),
             lease_owner = NULL, lease_until = NULL WHERE id = $1",
    )
    .bind(id)
    .bind(queued_uri)
    .execute(db)
    .await
    .map(|_| ())
}

/// A failed attempt: `permanent` sets the status to `failed`, otherwise it
/// stays `pending` for the retry.
pub async fn mark_attempt_failed<'e>(
    db: impl PgExecutor<'e>,
    id: i64,
    permanent: bool,
    reason: &str,
    error: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE adjustments SET status = CASE WHEN $2 THEN 'failed' ELSE status END,
             attempts = attempts + 1, failure_reason = $3, last_error = $4, updated_at = now(),
             lease_owner = NULL, lease_until = NULL
         WHERE id = $1",
    )
    .bind(id)
    .bind(permanent)
    .bind(reason)
    .bind(error)
    .execute(db)
    .await
    .map(|_| ())
}

mod list;

pub use list::{get, list};
