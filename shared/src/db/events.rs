//! The `webhook_events` table: what the worker finished with, keyed by the
//! event's identity (DESIGN invariant 3).

use sqlx::{PgExecutor, Row};

use crate::events::HubSpotEvent;

/// An event's identity: `(portal, eventId, subscriptionType, objectId,
/// occurredAt)` plus the property name of property changes (a repeated
/// notification has the same one; it only makes the key finer when HubSpot
/// omits `eventId`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventKey {
    /// Portal.
    pub portal_id: i64,
    /// HubSpot's `eventId`, when sent.
    pub event_id: Option<i64>,
    /// e.g. `deal.propertyChange`.
    pub subscription_type: String,
    /// The record.
    pub object_id: i64,
    /// Epoch milliseconds.
    pub occurred_at: i64,
    /// Property changes: the property; otherwise empty.
    pub property_name: String,
}

impl EventKey {
    /// The identity of `e`.
    pub fn of(e: &HubSpotEvent) -> Self {
        let clamp = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        Self {
            portal_id: clamp(e.portal_id.0),
            event_id: e.event_id.map(clamp),
            subscription_type: e.subscription_type.clone(),
            object_id: clamp(e.object_id),
            occurred_at: clamp(e.occurred_at),
            property_name: e.property_name.clone().unwrap_or_default(),
        }
    }
}

/// How a previously seen event ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenEvent {
    /// `skipped`, `ignored`, `failed` or `converted`.
    pub status: String,
    /// The conversion it produced, and that conversion's status.
    pub conversion: Option<(i64, String)>,
}

/// The recorded outcome of `key`, if any.
pub async fn lookup<'e>(
    db: impl PgExecutor<'e>,
    key: &EventKey,
) -> Result<Option<SeenEvent>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT e.status, e.conversion_id, c.status AS conversion_status
         FROM webhook_events e LEFT JOIN conversions c ON c.id = e.conversion_id
         WHERE e.portal_id = $1 AND e.event_id IS NOT DISTINCT FROM $2 AND e.subscription_type = $3
           AND e.object_id = $4 AND e.occurred_at = $5 AND e.property_name = $6",
    )
    .bind(key.portal_id)
    .bind(key.event_id)
    .bind(&key.subscription_type)
    .bind(key.object_id)
    .bind(key.occurred_at)
    .bind(&key.property_name)
    .fetch_optional(db)
    .await?;
    Ok(row.map(|r| SeenEvent {
        status: r.get("status"),
        conversion: r
            .get::<Option<i64>, _>("conversion_id")
            .zip(r.get::<Option<String>, _>("conversion_status")),
    }))
}

/// An outcome to record.
#[derive(Debug, Clone)]
pub struct EventOutcome<'a> {
    /// `skipped`, `ignored`, `failed` or `converted`.
    pub status: &'a str,
    /// Reason code (skip reason, ignore reason, failure reason).
    pub reason: Option<&'a str>,
    /// Error detail of failures.
    pub error: Option<&'a str>,
    /// The conversion produced.
    pub conversion_id: Option<i64>,
}

/// Records the outcome; false when the event was already recorded (by a
/// concurrent duplicate), in which case nothing changes.
pub async fn record<'e>(
    db: impl PgExecutor<'e>,
    key: &EventKey,
    event: &HubSpotEvent,
    received_at: Option<chrono::DateTime<chrono::Utc>>,
    outcome: &EventOutcome<'_>,
) -> Result<bool, sqlx::Error> {
    let json = serde_json::to_value(event).unwrap_or(serde_json::Value::Null);
    let done = sqlx::query(
        "INSERT INTO webhook_events (portal_id, event_id, subscription_type, object_id, occurred_at,
             property_name, status, reason, error, conversion_id, event, received_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
         ON CONFLICT ON CONSTRAINT webhook_events_identity DO NOTHING",
    )
    .bind(key.portal_id)
    .bind(key.event_id)
    .bind(&key.subscription_type)
    .bind(key.object_id)
    .bind(key.occurred_at)
    .bind(&key.property_name)
    .bind(outcome.status)
    .bind(outcome.reason)
    .bind(outcome.error)
    .bind(outcome.conversion_id)
    .bind(json)
    .bind(received_at)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}
