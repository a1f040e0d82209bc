//! The `webhook_events` table: what the worker finished with, keyed by the
//! event's identity (invariant 3, docs/src/architecture.md).

use sqlx::{PgExecutor, Row};

use domain::{
    events::HubSpotEvent,
    status::{DeliveryStatus, EventStatus},
};

/// An event's identity: `(portal, eventId, subscriptionType, objectId,
/// occurredAt)` plus the property name of property changes (a repeated
/// notification has the same one; it only makes the key finer when HubSpot
/// omits `eventId`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
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
    /// How it was recorded.
    pub status: EventStatus,
    /// The conversion it produced, and that conversion's status.
    pub conversion: Option<(i64, DeliveryStatus)>,
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
    let Some(r) = row else {
        return Ok(None);
    };
    let conversion_status = r
        .get::<Option<String>, _>("conversion_status")
        .map(|s| s.parse::<DeliveryStatus>())
        .transpose()
        .map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
    Ok(Some(SeenEvent {
        status: super::text(&r, "status")?,
        conversion: r
            .get::<Option<i64>, _>("conversion_id")
            .zip(conversion_status),
    }))
}

/// An outcome to record.
#[derive(Debug, Clone)]
pub struct EventOutcome<'a> {
    /// How it ended.
    pub status: EventStatus,
    /// Reason code (skip reason, ignore reason, failure reason).
    pub reason: Option<&'a str>,
    /// Error detail of failures.
    pub error: Option<&'a str>,
    /// The conversion produced.
    pub conversion_id: Option<i64>,
}

/// The body kept with an outcome: none for an event that fired nothing
/// (`ignored`; its identity and outcome are what is read), the event as
/// HubSpot sent it otherwise.
/// As JSON text, for the `json` column.
fn stored_body(event: &HubSpotEvent, status: EventStatus) -> Result<Option<String>, sqlx::Error> {
    (status != EventStatus::Ignored)
        .then(|| super::json_text(event))
        .transpose()
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
    let json = stored_body(event, outcome.status)?;
    let done = sqlx::query(
        "INSERT INTO webhook_events (portal_id, event_id, subscription_type, object_id, occurred_at,
             property_name, status, reason, error, conversion_id, event, received_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::json, $12)
         ON CONFLICT ON CONSTRAINT webhook_events_identity DO NOTHING",
    )
    .bind(key.portal_id)
    .bind(key.event_id)
    .bind(&key.subscription_type)
    .bind(key.object_id)
    .bind(key.occurred_at)
    .bind(&key.property_name)
    .bind(outcome.status.as_str())
    .bind(outcome.reason)
    .bind(outcome.error)
    .bind(outcome.conversion_id)
    .bind(json)
    .bind(received_at)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// [`record`] for many events in one statement; their identities must be
/// distinct (the caller records repeats one by one). Results (false:
/// already recorded) are in the items' order. The rows are written in the
/// identity index's order (the arrays are sorted here, so concurrent
/// batches lock in one order) and matched back by identity from what the
/// insert returns: no intermediate result of the arrays is kept, sorted or
/// joined.
pub async fn record_many<'e>(
    db: impl PgExecutor<'e>,
    items: &[(
        &EventKey,
        &HubSpotEvent,
        Option<chrono::DateTime<chrono::Utc>>,
        EventOutcome<'_>,
    )],
) -> Result<Vec<bool>, sqlx::Error> {
    if items.is_empty() {
        return Ok(Vec::new());
    }
    fn order(k: &EventKey) -> (i64, i64, i64, &str, &str, Option<i64>) {
        (
            k.portal_id,
            k.object_id,
            k.occurred_at,
            k.subscription_type.as_str(),
            k.property_name.as_str(),
            k.event_id,
        )
    }
    let mut sorted: Vec<_> = items.iter().collect();
    sorted.sort_unstable_by(|a, b| order(a.0).cmp(&order(b.0)));
    let col = |f: fn(&EventKey) -> i64| sorted.iter().map(|it| f(it.0)).collect::<Vec<i64>>();
    let event_ids: Vec<Option<i64>> = sorted.iter().map(|it| it.0.event_id).collect();
    let types: Vec<&str> = sorted
        .iter()
        .map(|it| it.0.subscription_type.as_str())
        .collect();
    let props: Vec<&str> = sorted
        .iter()
        .map(|it| it.0.property_name.as_str())
        .collect();
    let statuses: Vec<&str> = sorted.iter().map(|it| it.3.status.as_str()).collect();
    let reasons: Vec<Option<&str>> = sorted.iter().map(|it| it.3.reason).collect();
    let errors: Vec<Option<&str>> = sorted.iter().map(|it| it.3.error).collect();
    let conversions: Vec<Option<i64>> = sorted.iter().map(|it| it.3.conversion_id).collect();
    let events = sorted
        .iter()
        .map(|it| stored_body(it.1, it.3.status))
        .collect::<Result<Vec<Option<String>>, _>>()?;
    let received: Vec<Option<chrono::DateTime<chrono::Utc>>> =
        sorted.iter().map(|it| it.2).collect();
    let rows = sqlx::query(
        "INSERT INTO webhook_events (portal_id, event_id, subscription_type, object_id, occurred_at,
             property_name, status, reason, error, conversion_id, event, received_at)
         SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::bigint[], $5::bigint[],
             $6::text[], $7::text[], $8::text[], $9::text[], $10::bigint[], $11::json[],
             $12::timestamptz[])
         ON CONFLICT ON CONSTRAINT webhook_events_identity DO NOTHING
         RETURNING portal_id, event_id, subscription_type, object_id, occurred_at, property_name",
    )
    .bind(col(|k| k.portal_id))
    .bind(event_ids)
    .bind(types)
    .bind(col(|k| k.object_id))
    .bind(col(|k| k.occurred_at))
    .bind(props)
    .bind(statuses)
    .bind(reasons)
    .bind(errors)
    .bind(conversions)
    .bind(events)
    .bind(received)
    .fetch_all(db)
    .await?;
    let mut inserted = std::collections::HashSet::with_capacity(rows.len());
    for r in &rows {
        inserted.insert(EventKey {
            portal_id: r.try_get("portal_id")?,
            event_id: r.try_get("event_id")?,
            subscription_type: r.try_get("subscription_type")?,
            object_id: r.try_get("object_id")?,
            occurred_at: r.try_get("occurred_at")?,
            property_name: r.try_get("property_name")?,
        });
    }
    Ok(items.iter().map(|it| inserted.contains(it.0)).collect())
}

/// Which of `keys` were recorded before, in one query (a message's events
/// are looked up together; [`lookup`] then runs only for those). Events of
/// contacts whose data was erased count as seen too, so that the pipeline's
/// privacy check runs only for them.
pub async fn seen_many<'e>(
    db: impl PgExecutor<'e>,
    keys: &[EventKey],
) -> Result<Vec<bool>, sqlx::Error> {
    let col = |f: fn(&EventKey) -> i64| keys.iter().map(f).collect::<Vec<i64>>();
    let event_ids: Vec<Option<i64>> = keys.iter().map(|k| k.event_id).collect();
    let types: Vec<&str> = keys.iter().map(|k| k.subscription_type.as_str()).collect();
    let props: Vec<&str> = keys.iter().map(|k| k.property_name.as_str()).collect();
    let found: Vec<i64> = sqlx::query_scalar(
        "SELECT k.i FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::bigint[], $5::bigint[], $6::text[])
             WITH ORDINALITY AS k(portal_id, event_id, subscription_type, object_id, occurred_at, property_name, i)
         WHERE EXISTS (SELECT 1 FROM webhook_events e
             WHERE e.portal_id = k.portal_id AND e.event_id IS NOT DISTINCT FROM k.event_id
               AND e.subscription_type = k.subscription_type AND e.object_id = k.object_id
               AND e.occurred_at = k.occurred_at AND e.property_name = k.property_name)
            OR (k.subscription_type LIKE 'contact.%' AND EXISTS (SELECT 1 FROM privacy_erasures pe
               WHERE pe.portal_id = k.portal_id AND pe.contact_id = k.object_id))",
    )
    .bind(col(|k| k.portal_id))
    .bind(event_ids)
    .bind(types)
    .bind(col(|k| k.object_id))
    .bind(col(|k| k.occurred_at))
    .bind(props)
    .fetch_all(db)
    .await?;
    let mut seen = vec![false; keys.len()];
    for i in found {
        if let Some(s) = usize::try_from(i - 1).ok().and_then(|i| seen.get_mut(i)) {
            *s = true;
        }
    }
    Ok(seen)
}

/// Lets an event through deduplication again (a replay) when its recorded
/// outcome is a failure, its own or its conversion's; never when its
/// conversion was delivered. Rows deleted.
pub async fn forget_failure<'e>(db: impl PgExecutor<'e>, k: &EventKey) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "DELETE FROM webhook_events e
         WHERE e.portal_id = $1 AND e.event_id IS NOT DISTINCT FROM $2 AND e.subscription_type = $3
           AND e.object_id = $4 AND e.occurred_at = $5 AND e.property_name = $6
           AND (e.status = 'failed' OR EXISTS (SELECT 1 FROM conversions c
                WHERE c.id = e.conversion_id AND c.status = 'failed'))",
    )
    .bind(k.portal_id)
    .bind(k.event_id)
    .bind(&k.subscription_type)
    .bind(k.object_id)
    .bind(k.occurred_at)
    .bind(&k.property_name)
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}
