//! The website's own reads: Activity's recent conversions and open dead
//! letters (deleting an account is `super::account`).

use serde::Serialize;
use sqlx::{PgPool, Row};

/// One conversion in Activity.
#[derive(Debug, Clone, Serialize)]
pub struct ConversionItem {
    /// Row id.
    pub id: i64,
    /// `pending`, `delivered`, `failed`.
    pub status: String,
    /// Object type.
    pub object_type: String,
    /// HubSpot object id.
    pub object_id: i64,
    /// Event type sent.
    pub event_type: String,
    /// OrderId sent.
    pub order_id: String,
    /// impact.com's QueuedUri.
    pub queued_uri: Option<String>,
    /// Why the last attempt failed.
    pub failure_reason: Option<String>,
    /// impact.com's verdict on the submission: `complete`, `rejected`,
    /// `duplicate_resend`, `unknown`; `null` while it is being followed.
    pub outcome: Option<String>,
    /// impact.com's ErrorType of a rejected submission (e.g. `Contract Error`).
    pub error_type: Option<String>,
    /// impact.com's ErrorReason (e.g. `CONTRACT_NOT_FOUND`).
    pub error_reason: Option<String>,
    /// Last change (RFC 3339).
    pub updated_at: String,
    /// The record `object_id` was merged into in HubSpot (`null`: not
    /// merged): the conversion is that record's now.
    pub merged_into: Option<i64>,
    /// When it was recorded (RFC 3339; Activity's search).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// Delivery attempts so far (Activity's search).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempts: Option<i32>,
    /// The ClickId sent, if any (Activity's search).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub click_id: Option<String>,
}

/// One dead letter: an event that failed for good.
#[derive(Debug, Serialize)]
pub struct DeadLetterItem {
    /// Id (replay handle).
    pub id: i64,
    /// `deal.propertyChange`, ...
    pub subscription_type: String,
    /// HubSpot object id.
    pub object_id: i64,
    /// Failure reason code.
    pub reason: Option<String>,
    /// Detail.
    pub error: Option<String>,
    /// When it failed (RFC 3339).
    pub failed_at: String,
    /// `open`, or `replaying` while a replay holds it.
    pub state: String,
}

/// The portal's 50 most recent conversions.
pub async fn recent_conversions(
    pool: &PgPool,
    portal: i64,
) -> Result<Vec<ConversionItem>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT c.id, c.status, c.object_type, c.object_id, c.event_type, c.order_id, c.queued_uri,
                c.failure_reason, c.outcome, c.error_type, c.error_reason, c.updated_at,
                m.survivor_id AS merged_into
         FROM conversions c
         LEFT JOIN object_merges m ON m.portal_id = c.portal_id
             AND m.object_type = c.object_type AND m.merged_id = c.object_id
         WHERE c.portal_id = $1 ORDER BY c.updated_at DESC, c.id DESC LIMIT 50",
    )
    .bind(portal)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| ConversionItem {
            id: r.get("id"),
            status: r.get("status"),
            object_type: r.get("object_type"),
            object_id: r.get("object_id"),
            event_type: r.get("event_type"),
            order_id: r.get("order_id"),
            queued_uri: r.get("queued_uri"),
            failure_reason: r.get("failure_reason"),
            outcome: r.get("outcome"),
            error_type: r.get("error_type"),
            error_reason: r.get("error_reason"),
            updated_at: r
                .get::<chrono::DateTime<chrono::Utc>, _>("updated_at")
                .to_rfc3339(),
            merged_into: r.get("merged_into"),
            created_at: None,
            attempts: None,
            click_id: None,
        })
        .collect())
}

/// The portal's 50 most recent unresolved dead letters (the store `worker
/// dlq` works on): open ones, and those a replay holds (with their state).
pub async fn open_dead_letters(
    pool: &PgPool,
    portal: i64,
) -> Result<Vec<DeadLetterItem>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, COALESCE(events->0->>'subscriptionType', '') AS subscription_type,
                COALESCE(object_id, 0) AS object_id, reason_class || ': ' || reason AS reason,
                last_error, created_at, state
         FROM dead_letters WHERE portal_id = $1 AND state IN ('open', 'replaying')
         ORDER BY created_at DESC, id DESC LIMIT 50",
    )
    .bind(portal)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| DeadLetterItem {
            id: r.get("id"),
            subscription_type: r.get("subscription_type"),
            object_id: r.get("object_id"),
            reason: r.get("reason"),
            error: r.get("last_error"),
            failed_at: r
                .get::<chrono::DateTime<chrono::Utc>, _>("created_at")
                .to_rfc3339(),
            state: r.get("state"),
        })
        .collect())
}

/// The portal a dead letter belongs to (`None`: no such dead letter, or
/// one without a portal).
pub async fn dead_letter_portal(pool: &PgPool, id: i64) -> Result<Option<i64>, sqlx::Error> {
    let owner: Option<Option<i64>> =
        sqlx::query_scalar("SELECT portal_id FROM dead_letters WHERE id = $1")
            .bind(id)
            .fetch_optional(pool)
            .await?;
    Ok(owner.flatten())
}

pub mod dashboard;
pub mod search;
pub mod story;

/// A timestamp as the pages print it (UTC, RFC 3339, milliseconds).
pub(crate) fn stamp(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
