//! Activity: recent conversions and dead letters.

use domain::events::PortalId;
use serde::Serialize;
use sqlx::Row;

use super::{OpError, Website};

/// One conversion in Activity.
#[derive(Debug, Serialize)]
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
}

/// One reversal or modification in Activity.
#[derive(Debug, Serialize)]
pub struct AdjustmentItem {
    /// Row id.
    pub id: i64,
    /// `reversal` or `modification`.
    pub kind: String,
    /// `pending`, `delivered`, `failed`.
    pub status: String,
    /// Object type.
    pub object_type: String,
    /// HubSpot object id.
    pub object_id: i64,
    /// The conversion adjusted.
    pub conversion_id: i64,
    /// Its OrderId.
    pub order_id: Option<String>,
    /// Why (`dealstage=closedlost`, `deleted`, `amount=1500`).
    pub cause: String,
    /// Modifications: the new Amount.
    pub amount: Option<String>,
    /// impact.com's QueuedUri.
    pub queued_uri: Option<String>,
    /// Why the last attempt failed.
    pub failure_reason: Option<String>,
    /// When it was recorded (RFC 3339).
    pub created_at: String,
}

/// Activity: recent conversions, adjustments and dead letters.
#[derive(Debug, Serialize)]
pub struct Activity {
    /// The 50 most recent conversions.
    pub conversions: Vec<ConversionItem>,
    /// The 50 most recent reversals and modifications.
    pub adjustments: Vec<AdjustmentItem>,
    /// The 50 most recent dead letters.
    pub dead_letters: Vec<DeadLetterItem>,
}

/// The portal's recent activity.
pub async fn activity(site: &Website, portal: PortalId) -> Result<Activity, OpError> {
    let id = i64::try_from(portal.0).unwrap_or(-1);
    let rows = sqlx::query(
        "SELECT id, status, object_type, object_id, event_type, order_id, queued_uri, failure_reason,
                outcome, error_type, error_reason, updated_at
         FROM conversions WHERE portal_id = $1 ORDER BY updated_at DESC, id DESC LIMIT 50",
    )
    .bind(id)
    .fetch_all(&site.pool)
    .await?;
    let conversions = rows
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
        })
        .collect();
    let adjustments = shared::db::adjustments::list(&site.pool, Some(id), None, 50)
        .await?
        .into_iter()
        .map(|a| AdjustmentItem {
            order_id: a
                .form
                .iter()
                .find(|(k, _)| k == "OrderId")
                .map(|(_, v)| v.clone()),
            id: a.id,
            kind: a.kind,
            status: a.status,
            object_type: a.object_type,
            object_id: a.object_id,
            conversion_id: a.conversion_id,
            cause: a.cause,
            amount: a.amount,
            queued_uri: a.queued_uri,
            failure_reason: a.failure_reason,
            created_at: a.created_at.to_rfc3339(),
        })
        .collect();
    Ok(Activity {
        conversions,
        adjustments,
        dead_letters: dead_letters(site, id).await?,
    })
}

/// The portal's open dead letters (the store `worker dlq` works on).
async fn dead_letters(site: &Website, portal: i64) -> Result<Vec<DeadLetterItem>, OpError> {
    let rows = sqlx::query(
        "SELECT id, COALESCE(events->0->>'subscriptionType', '') AS subscription_type,
                COALESCE(object_id, 0) AS object_id, reason_class || ': ' || reason AS reason,
                last_error, created_at
         FROM dead_letters WHERE portal_id = $1 AND state = 'open'
         ORDER BY created_at DESC, id DESC LIMIT 50",
    )
    .bind(portal)
    .fetch_all(&site.pool)
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
        })
        .collect())
}

/// Replays one of the portal's dead letters with its current configuration
/// and a fresh object, as `worker dlq replay ID` does (a delivered
/// conversion is never sent again from here).
pub async fn replay(site: &Website, portal: PortalId, id: i64, actor: &str) -> Result<(), OpError> {
    let owner: Option<Option<i64>> =
        sqlx::query_scalar("SELECT portal_id FROM dead_letters WHERE id = $1")
            .bind(id)
            .fetch_optional(&site.pool)
            .await?;
    // Another portal's dead letter is "not found", never "forbidden": no
    // information about other tenants leaks.
    if owner.flatten() != i64::try_from(portal.0).ok() {
        return Err(OpError::Missing(format!(
            "no dead letter {id} for this portal"
        )));
    }
    let report = worker::dlq::replay::replay_one(
        &site.replayer,
        shared::db::dead_letters::DeadLetterId(id),
        worker::dlq::replay::ReplayMode::default(),
        actor,
    )
    .await?;
    if report.outcome.sent() {
        Ok(())
    } else {
        Err(OpError::Conflict(format!(
            "{}: {}",
            report.outcome.as_str(),
            report.detail
        )))
    }
}
