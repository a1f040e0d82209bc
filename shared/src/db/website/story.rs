//! A conversion's whole story (the conversion page), and a dead letter's:
//! the webhook events that caused it, the object as fetched with each
//! field's source, the parameters sent, every delivery attempt, impact.com's
//! outcome, and the reversals and modifications that followed.

use serde::Serialize;
use serde_json::Value;
use sqlx::{PgPool, Row};

use super::{ConversionItem, search, stamp};

/// One webhook event behind a conversion or a dead letter.
#[derive(Debug, Clone, Serialize)]
pub struct EventItem {
    /// HubSpot's eventId.
    pub event_id: Option<i64>,
    /// `deal.propertyChange`, ...
    pub subscription_type: String,
    /// The changed property, if any, and its new value.
    pub property_name: Option<String>,
    /// Its new value.
    pub property_value: Option<String>,
    /// HubSpot's `attemptNumber` (0: the first delivery of the webhook).
    pub attempt_number: Option<i64>,
    /// HubSpot's `occurredAt` (RFC 3339).
    pub occurred_at: Option<String>,
    /// The same, as HubSpot sent it (epoch milliseconds).
    pub occurred_at_ms: Option<i64>,
    /// When ingest accepted it (RFC 3339).
    pub received_at: Option<String>,
    /// The worker's outcome (`converted`, `failed`, ...).
    pub status: Option<String>,
}

impl EventItem {
    /// An event as HubSpot sent it (a dead letter keeps them so).
    pub fn of_json(e: &Value) -> Self {
        let ms = e.get("occurredAt").and_then(Value::as_i64);
        Self {
            event_id: e.get("eventId").and_then(Value::as_i64),
            subscription_type: e
                .get("subscriptionType")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            property_name: e
                .get("propertyName")
                .and_then(Value::as_str)
                .map(str::to_owned),
            property_value: e
                .get("propertyValue")
                .and_then(Value::as_str)
                .map(str::to_owned),
            attempt_number: e.get("attemptNumber").and_then(Value::as_i64),
            occurred_at: ms
                .and_then(chrono::DateTime::from_timestamp_millis)
                .map(stamp),
            occurred_at_ms: ms,
            received_at: None,
            status: None,
        }
    }
}

/// One POST of the conversion to impact.com.
#[derive(Debug, Clone, Serialize)]
pub struct AttemptItem {
    /// When (RFC 3339).
    pub at: String,
    /// impact.com's HTTP status (`None`: no answer).
    pub http_status: Option<i16>,
    /// How long it took.
    pub duration_ms: i32,
    /// `queued`, or the failure reason code.
    pub result: String,
    /// The failure's detail.
    pub error: Option<String>,
    /// A replay's send of a conversion delivered before.
    pub resend: bool,
}

/// A reversal or modification of the conversion.
#[derive(Debug, Clone, Serialize)]
pub struct AdjustmentStep {
    /// Row id.
    pub id: i64,
    /// `reversal`, `modification`.
    pub kind: String,
    /// Why.
    pub cause: String,
    /// `pending`, `delivered`, `failed`.
    pub status: String,
    /// The parameters sent, in order.
    pub form: Vec<(String, String)>,
    /// impact.com's QueuedUri.
    pub queued_uri: Option<String>,
    /// Why the last attempt failed.
    pub failure_reason: Option<String>,
    /// Recorded (RFC 3339).
    pub created_at: String,
}

/// A dead letter, as its page (and the conversion's) shows it.
#[derive(Debug, Clone, Serialize)]
pub struct DeadLetterStory {
    /// Id (the replay handle).
    pub id: i64,
    /// Object type, when known.
    pub object_type: Option<String>,
    /// HubSpot object id.
    pub object_id: Option<i64>,
    /// `permanent`, `exhausted`, `poison`, `malformed`.
    pub reason_class: String,
    /// Reason code.
    pub reason: String,
    /// The last remote answer's HTTP status.
    pub last_status: Option<i32>,
    /// Its body or the failure's detail.
    pub last_error: Option<String>,
    /// Attempts before giving up.
    pub attempts: i32,
    /// `open`, `replaying`, `replayed`, `discarded`.
    pub state: String,
    /// Who resolved it, and how.
    pub resolution: Option<String>,
    /// The events it holds.
    pub events: Vec<EventItem>,
    /// The object as fetched (`properties`, `line_items`, ...), if it was.
    pub fetched: Option<Value>,
    /// The parameters that were (or would have been) sent.
    pub params: Vec<(String, String)>,
    /// The conversion it belongs to, if one was recorded.
    pub conversion_id: Option<i64>,
    /// Written (RFC 3339).
    pub created_at: String,
}

/// A conversion's whole story.
#[derive(Debug, Clone, Serialize)]
pub struct ConversionStory {
    /// The conversion as Activity lists it.
    pub conversion: ConversionItem,
    /// The parameters sent (or to send), in order.
    pub params: Vec<(String, String)>,
    /// The object as fetched and each field's source (`None`: recorded
    /// before the connector kept them, or erased).
    pub fetched: Option<Value>,
    /// When impact.com queued it (RFC 3339).
    pub delivered_at: Option<String>,
    /// The submission's last Status at impact.com.
    pub submission_status: Option<String>,
    /// When the outcome was last checked.
    pub outcome_checked_at: Option<String>,
    /// The last error.
    pub last_error: Option<String>,
    /// The webhook events that caused it, oldest first.
    pub events: Vec<EventItem>,
    /// Every delivery attempt, oldest first.
    pub attempts: Vec<AttemptItem>,
    /// Reversals and modifications, oldest first.
    pub adjustments: Vec<AdjustmentStep>,
    /// Dead letters of it.
    pub dead_letters: Vec<DeadLetterStory>,
}

/// Conversion `id` of `portal` with its story (`None`: no such conversion
/// for this portal).
pub async fn conversion(
    pool: &PgPool,
    portal: i64,
    id: i64,
) -> Result<Option<ConversionStory>, sqlx::Error> {
    let Some(r) = sqlx::query(
        "SELECT c.id, c.status, c.object_type, c.object_id, c.event_type, c.order_id, c.queued_uri,
                c.failure_reason, c.outcome, c.error_type, c.error_reason, c.updated_at, c.created_at,
                c.attempts, c.payload, fetched_with_sources(c.fetched, c.sources_id) AS fetched,
                c.delivered_at, c.submission_status,
                c.outcome_checked_at, c.last_error, m.survivor_id AS merged_into
         FROM conversions c
         LEFT JOIN object_merges m ON m.portal_id = c.portal_id
             AND m.object_type = c.object_type AND m.merged_id = c.object_id
         WHERE c.portal_id = $1 AND c.id = $2",
    )
    .bind(portal)
    .bind(id)
    .fetch_optional(pool)
    .await?
    else {
        return Ok(None);
    };
    let opt_stamp = |col: &str| -> Result<Option<String>, sqlx::Error> {
        Ok(r.try_get::<Option<chrono::DateTime<chrono::Utc>>, _>(col)?
            .map(stamp))
    };
    let story = ConversionStory {
        conversion: search::item(&r)?,
        params: serde_json::from_value(r.try_get("payload")?).unwrap_or_default(),
        fetched: r.try_get("fetched")?,
        delivered_at: opt_stamp("delivered_at")?,
        submission_status: r.try_get("submission_status")?,
        outcome_checked_at: opt_stamp("outcome_checked_at")?,
        last_error: r.try_get("last_error")?,
        events: events(pool, portal, id).await?,
        attempts: attempts(pool, id).await?,
        adjustments: adjustments(pool, portal, id).await?,
        dead_letters: dead_letters(pool, portal, Some(id), None).await?,
    };
    Ok(Some(story))
}

async fn events(pool: &PgPool, portal: i64, id: i64) -> Result<Vec<EventItem>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT event, received_at, status FROM webhook_events
         WHERE conversion_id = $1 AND portal_id = $2 ORDER BY occurred_at, id",
    )
    .bind(id)
    .bind(portal)
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|r| {
            let mut e = EventItem::of_json(&r.try_get::<Value, _>("event")?);
            e.received_at = r
                .try_get::<Option<chrono::DateTime<chrono::Utc>>, _>("received_at")?
                .map(stamp);
            e.status = r.try_get("status")?;
            Ok(e)
        })
        .collect()
}

async fn attempts(pool: &PgPool, id: i64) -> Result<Vec<AttemptItem>, sqlx::Error> {
    let rows = sqlx::query(
        // A first attempt that impact.com queued is kept in the
        // conversion's own row, the others in `delivery_attempts`: the
        // view has both.
        "SELECT at, http_status, duration_ms, result, error, resend FROM conversion_attempts
         WHERE conversion_id = $1 ORDER BY at",
    )
    .bind(id)
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(AttemptItem {
                at: stamp(r.try_get("at")?),
                http_status: r.try_get("http_status")?,
                duration_ms: r.try_get("duration_ms")?,
                result: r.try_get("result")?,
                error: r.try_get("error")?,
                resend: r.try_get("resend")?,
            })
        })
        .collect()
}

async fn adjustments(
    pool: &PgPool,
    portal: i64,
    id: i64,
) -> Result<Vec<AdjustmentStep>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, kind, cause, status, form, queued_uri, failure_reason, created_at
         FROM adjustments WHERE conversion_id = $1 AND portal_id = $2 ORDER BY created_at, id",
    )
    .bind(id)
    .bind(portal)
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(AdjustmentStep {
                id: r.try_get("id")?,
                kind: r.try_get("kind")?,
                cause: r.try_get("cause")?,
                status: r.try_get("status")?,
                form: serde_json::from_value(r.try_get("form")?).unwrap_or_default(),
                queued_uri: r.try_get("queued_uri")?,
                failure_reason: r.try_get("failure_reason")?,
                created_at: stamp(r.try_get("created_at")?),
            })
        })
        .collect()
}

/// Dead letter `letter` of `portal`, with its story (`None`: no such dead
/// letter for this portal).
pub async fn dead_letter(
    pool: &PgPool,
    portal: i64,
    letter: i64,
) -> Result<Option<DeadLetterStory>, sqlx::Error> {
    Ok(dead_letters(pool, portal, None, Some(letter))
        .await?
        .into_iter()
        .next())
}

async fn dead_letters(
    pool: &PgPool,
    portal: i64,
    conversion: Option<i64>,
    letter: Option<i64>,
) -> Result<Vec<DeadLetterStory>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, object_type, object_id, reason_class, reason, last_status, last_error, attempts,
                state, resolution, events, fetched_object, payload, conversion_id, created_at
         FROM dead_letters
         WHERE portal_id = $1 AND ($2::bigint IS NULL OR conversion_id = $2)
           AND ($3::bigint IS NULL OR id = $3)
         ORDER BY created_at, id LIMIT 50",
    )
    .bind(portal)
    .bind(conversion)
    .bind(letter)
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|r| {
            let events: Value = r.try_get("events")?;
            let events = match &events {
                Value::Array(a) => a.iter().map(EventItem::of_json).collect(),
                _ => vec![],
            };
            let payload: Option<Value> = r.try_get("payload")?;
            Ok(DeadLetterStory {
                id: r.try_get("id")?,
                object_type: r.try_get("object_type")?,
                object_id: r.try_get("object_id")?,
                reason_class: r.try_get("reason_class")?,
                reason: r.try_get("reason")?,
                last_status: r.try_get("last_status")?,
                last_error: r.try_get("last_error")?,
                attempts: r.try_get("attempts")?,
                state: r.try_get("state")?,
                resolution: r.try_get("resolution")?,
                events,
                fetched: r.try_get("fetched_object")?,
                params: payload
                    .and_then(|p| serde_json::from_value(p).ok())
                    .unwrap_or_default(),
                conversion_id: r.try_get("conversion_id")?,
                created_at: stamp(r.try_get("created_at")?),
            })
        })
        .collect()
}

/// The reason of the dead letter a "send again" is carried out through.
pub const RESEND_REASON: &str = "resend_requested";

/// Why a conversion cannot be sent again from its page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResendRefusal {
    /// No such conversion for this portal.
    NotFound,
    /// Not delivered: its dead letter's Replay is the way.
    NotDelivered,
}

/// "Send again" of a delivered conversion: a dead letter (`permanent`,
/// reason [`RESEND_REASON`]) holding the conversion, its events and its
/// parameters as sent, for a forced as-sent replay to carry out (the
/// replay machinery's lease, audit and report). Returns its id.
pub async fn resend_letter(
    pool: &PgPool,
    portal: i64,
    id: i64,
    actor: &str,
) -> Result<Result<i64, ResendRefusal>, sqlx::Error> {
    let row = sqlx::query(
        "INSERT INTO dead_letters (portal_id, object_type, object_id, reason_class, reason,
             last_error, attempts, events, payload, conversion_id, fetched_object)
         SELECT c.portal_id, c.object_type, c.object_id, 'permanent', $3, $4, c.attempts,
                coalesce((SELECT jsonb_agg(e.event::jsonb ORDER BY e.occurred_at, e.id)
                          FROM webhook_events e WHERE e.conversion_id = c.id), '[]'::jsonb),
                c.payload, c.id, fetched_with_sources(c.fetched, c.sources_id)
         FROM conversions c
         WHERE c.portal_id = $1 AND c.id = $2 AND c.status = 'delivered'
         RETURNING id",
    )
    .bind(portal)
    .bind(id)
    .bind(RESEND_REASON)
    .bind(format!("sent again on request of {actor}"))
    .fetch_optional(pool)
    .await?;
    if let Some(r) = row {
        return Ok(Ok(r.try_get(0)?));
    }
    let exists: Option<String> =
        sqlx::query_scalar("SELECT status FROM conversions WHERE portal_id = $1 AND id = $2")
            .bind(portal)
            .bind(id)
            .fetch_optional(pool)
            .await?;
    Ok(Err(match exists {
        None => ResendRefusal::NotFound,
        Some(_) => ResendRefusal::NotDelivered,
    }))
}
