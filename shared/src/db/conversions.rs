//! The `conversions` table: one row per idempotency key
//! `(portal, event type, OrderId)`, whatever the number of events mapping to it.

use sqlx::{PgExecutor, Row};

use super::delivery_lease::NewLease;

use domain::{mapping::Conversion, object_type::ObjectType, status::DeliveryStatus};

/// A conversion row's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversionRow {
    /// Row id.
    pub id: i64,
    /// `pending`, `delivered` or `failed`.
    pub status: DeliveryStatus,
    /// The parameters to send, in order.
    pub params: Vec<(String, String)>,
    /// Delivery attempts that reached impact.com (or failed trying).
    pub attempts: i32,
    /// True when this call created the row.
    pub created: bool,
}

/// A conversion as recorded for an event: its state, without the payload
/// (the delivery reads that with the row's lock; returning it here cost
/// PostgreSQL a JSON rendering and the worker a parse per conversion).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedConversion {
    /// Row id.
    pub id: i64,
    /// `pending`, `delivered` or `failed`.
    pub status: DeliveryStatus,
    /// Delivery attempts so far.
    pub attempts: i32,
    /// True when this call created the row.
    pub created: bool,
    /// The delivery lease the statement took on the row it created (see
    /// [`super::delivery_lease::Adopted`]); `None` for a row that existed.
    pub lease: Option<uuid::Uuid>,
}

fn recorded_of(
    row: &sqlx::postgres::PgRow,
    lease: &NewLease,
) -> Result<RecordedConversion, sqlx::Error> {
    let created: bool = row.get("created");
    Ok(RecordedConversion {
        id: row.get("id"),
        status: super::text(row, "status")?,
        attempts: row.get("attempts"),
        created,
        lease: created.then_some(lease.token),
    })
}

fn locked_of(r: &sqlx::postgres::PgRow) -> Result<ConversionRow, sqlx::Error> {
    Ok(ConversionRow {
        id: r.get("id"),
        status: super::text(r, "status")?,
        params: params_of(r.get("payload")),
        attempts: r.get("attempts"),
        created: false,
    })
}

fn params_of(v: serde_json::Value) -> Vec<(String, String)> {
    serde_json::from_value(v).unwrap_or_default()
}

/// Records `conv` under its key. An existing row keeps its status; a row not
/// delivered yet takes the new payload (so a fixed configuration or a newer
/// object state is what a re-delivery sends), a delivered one is untouched.
/// A portal that does not exist (any more) is `RowNotFound`.
pub async fn record<'e>(
    db: impl PgExecutor<'e>,
    portal: i64,
    object_type: ObjectType,
    object_id: i64,
    conv: &Conversion,
) -> Result<ConversionRow, sqlx::Error> {
    let payload = serde_json::to_value(&conv.params).unwrap_or_default();
    let row = sqlx::query(
        "INSERT INTO conversions (portal_id, event_type, order_id, object_type, object_id, payload)
         SELECT $1, $2, $3, $4, $5, $6 WHERE EXISTS (SELECT 1 FROM portals WHERE portal_id = $1)
         ON CONFLICT (portal_id, event_type, order_id) DO UPDATE SET
             payload = CASE WHEN conversions.status = 'delivered' THEN conversions.payload ELSE EXCLUDED.payload END,
             updated_at = now()
         RETURNING id, status, payload, attempts, (xmax = 0) AS created",
    )
    .bind(portal)
    .bind(&conv.event_type)
    .bind(&conv.order_id)
    .bind(object_type.as_str())
    .bind(object_id)
    .bind(payload)
    .fetch_one(db)
    .await?;
    Ok(ConversionRow {
        created: row.get("created"),
        ..locked_of(&row)?
    })
}

/// A failed attempt (`f`): a permanent failure sets the status to `failed`,
/// a transient one leaves the conversion `pending` for the retry.
pub async fn mark_attempt_failed<'e>(
    db: impl PgExecutor<'e>,
    id: i64,
    f: &domain::failure::Failure,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE conversions SET status = CASE WHEN $2 THEN 'failed' ELSE status END,
             attempts = attempts + 1, failure_reason = $3, last_error = $4, updated_at = now(),
             lease_owner = NULL, lease_until = NULL
         WHERE id = $1",
    )
    .bind(id)
    .bind(!f.is_transient())
    .bind(f.reason.as_str())
    .bind(&f.detail)
    .execute(db)
    .await
    .map(|_| ())
}

/// Reads several conversions for delivery, in id order (their delivery
/// leases held: `super::delivery_lease`); rows that no longer exist are
/// left out.
pub async fn read_many<'e>(
    db: impl PgExecutor<'e>,
    ids: &[i64],
) -> Result<Vec<ConversionRow>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, status, payload, attempts FROM conversions WHERE id = ANY($1) ORDER BY id",
    )
    .bind(ids)
    .fetch_all(db)
    .await?;
    rows.iter().map(locked_of).collect()
}

/// A conversion impact.com queued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// The conversion.
    pub id: i64,
    /// Where impact.com reports the submission's state.
    pub queued_uri: Option<String>,
    /// Set when this was its first attempt: how long it took (ms). The row
    /// keeps that attempt (`first_attempt_at`, `first_attempt_ms`) instead
    /// of a `delivery_attempts` row.
    pub first_attempt_ms: Option<i32>,
}

/// impact.com queued all of these, one statement. On a row delivered for
/// the first time it is a HOT update: no column an index reads changes
/// (`outcome` and `outcome_next_check_at` were NULL and stay so; see
/// migration `20261208000100_hot_delivered_update.sql`).
pub async fn mark_delivered_many<'e>(
    db: impl PgExecutor<'e>,
    delivered: &[Delivered],
) -> Result<(), sqlx::Error> {
    if delivered.is_empty() {
        return Ok(());
    }
    let ids: Vec<i64> = delivered.iter().map(|d| d.id).collect();
    let uris: Vec<Option<&str>> = delivered.iter().map(|d| d.queued_uri.as_deref()).collect();
    let firsts: Vec<Option<i32>> = delivered.iter().map(|d| d.first_attempt_ms).collect();
    sqlx::query(
        "UPDATE conversions SET status = 'delivered', queued_uri = u.uri, attempts = attempts + 1,
             failure_reason = NULL, delivered_at = clock_timestamp(), updated_at = now(),
             outcome = NULL, submission_status = NULL, error_type = NULL, error_reason = NULL,
             outcome_checks = 0, outcome_next_check_at = NULL,
             first_attempt_at = CASE WHEN u.first_ms IS NULL THEN first_attempt_at ELSE clock_timestamp() END,
             first_attempt_ms = coalesce(u.first_ms, first_attempt_ms),
             lease_owner = NULL, lease_until = NULL
         FROM unnest($1::bigint[], $2::text[], $3::int[]) AS u(id, uri, first_ms)
         WHERE conversions.id = u.id",
    )
    .bind(&ids)
    .bind(&uris)
    .bind(&firsts)
    .execute(db)
    .await
    .map(|_| ())
}

/// [`record`] and the event's `converted` outcome (see
/// [`super::events::record`]) in one statement, so one round trip and one
/// commit per event. Returns the row and whether this event was recorded
/// first (false: a concurrent duplicate got there first and delivers).
#[allow(clippy::too_many_arguments)]
pub async fn record_converted<'e>(
    db: impl PgExecutor<'e>,
    object_type: ObjectType,
    conv: &Conversion,
    key: &super::events::EventKey,
    event: &domain::events::HubSpotEvent,
    received_at: Option<chrono::DateTime<chrono::Utc>>,
    (fetched, sources_id): (Option<&serde_json::Value>, Option<i64>),
    lease: &NewLease,
) -> Result<(RecordedConversion, bool), sqlx::Error> {
    let payload = super::json_text(&conv.params)?;
    let json = super::json_text(event)?;
    let fetched = fetched.map(super::json_text).transpose()?;
    let fired_by = domain::merges::fired_by_event(event);
    let row = sqlx::query(
        "WITH c AS (
             INSERT INTO conversions (portal_id, event_type, order_id, object_type, object_id, payload, fired_by, fetched,
                 sources_id, lease_owner, lease_until)
             SELECT $1, $2, $3, $4, $5, $6::json, $13, $14::json, $17, $15, clock_timestamp() + $16 * interval '1 millisecond'
             WHERE EXISTS (SELECT 1 FROM portals WHERE portal_id = $1)
             ON CONFLICT (portal_id, event_type, order_id) DO UPDATE SET
                 payload = CASE WHEN conversions.status = 'delivered' THEN conversions.payload ELSE EXCLUDED.payload END,
                 fetched = CASE WHEN conversions.status = 'delivered' THEN conversions.fetched ELSE EXCLUDED.fetched END,
                 sources_id = CASE WHEN conversions.status = 'delivered' THEN conversions.sources_id ELSE EXCLUDED.sources_id END,
                 fired_by = coalesce(conversions.fired_by, EXCLUDED.fired_by),
                 updated_at = now()
             RETURNING id, status, attempts, (xmax = 0) AS created
         ), e AS (
             INSERT INTO webhook_events (portal_id, event_id, subscription_type, object_id, occurred_at,
                 property_name, status, conversion_id, event, received_at)
             SELECT $1, $7, $8, $5, $9, $10, 'converted', c.id, $11::json, $12 FROM c
             ON CONFLICT ON CONSTRAINT webhook_events_identity DO NOTHING
             RETURNING 1
         )
         SELECT c.id, c.status, c.attempts, c.created, EXISTS (SELECT 1 FROM e) AS first FROM c",
    )
    .bind(key.portal_id)
    .bind(&conv.event_type)
    .bind(&conv.order_id)
    .bind(object_type.as_str())
    .bind(key.object_id)
    .bind(payload)
    .bind(key.event_id)
    .bind(&key.subscription_type)
    .bind(key.occurred_at)
    .bind(&key.property_name)
    .bind(json)
    .bind(received_at)
    .bind(fired_by)
    .bind(fetched)
    .bind(lease.token)
    .bind(lease.millis())
    .bind(sources_id)
    .fetch_one(db)
    .await?;
    Ok((recorded_of(&row, lease)?, row.get("first")))
}

/// One item of [`record_converted_many`].
pub struct ConvertedItem<'a> {
    /// The object's type.
    pub object_type: ObjectType,
    /// The conversion built for the event.
    pub conversion: &'a Conversion,
    /// The event's identity.
    pub key: &'a super::events::EventKey,
    /// The event.
    pub event: &'a domain::events::HubSpotEvent,
    /// When ingest accepted it.
    pub received_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The object as fetched (used properties only), for the website's
    /// conversion page (`conversions.fetched`).
    pub fetched: Option<&'a serde_json::Value>,
    /// Each field's source, stored apart (`super::mapping_sources`).
    pub sources_id: Option<i64>,
}

/// [`record_converted`] for many events in one statement (a message's
/// events recorded together cost one round trip, not one each). The items'
/// conversion keys and event identities must be distinct (a statement
/// cannot upsert one row twice): the caller records repeats one by one.
/// Rows are written in key order (the arrays are sorted here, so that
/// PostgreSQL reads them in that order without sorting), so concurrent
/// batches lock in one order. Each table's insert reads only its own
/// columns' arrays: the JSON documents are not copied into an intermediate
/// result, sorted or joined. Results are in the items' order (matched by
/// conversion key). The rows created are leased with `lease` for their
/// delivery.
pub async fn record_converted_many<'e>(
    db: impl PgExecutor<'e>,
    items: &[ConvertedItem<'_>],
    lease: &NewLease,
) -> Result<Vec<(RecordedConversion, bool)>, sqlx::Error> {
    if items.is_empty() {
        return Ok(Vec::new());
    }
    fn key<'a>(it: &'a ConvertedItem<'_>) -> (i64, &'a str, &'a str) {
        (
            it.key.portal_id,
            it.conversion.event_type.as_str(),
            it.conversion.order_id.as_str(),
        )
    }
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_unstable_by(|a, b| key(&items[*a]).cmp(&key(&items[*b])));
    let mut portal_ids = Vec::with_capacity(items.len());
    let mut event_types = Vec::with_capacity(items.len());
    let mut order_ids = Vec::with_capacity(items.len());
    let mut object_types = Vec::with_capacity(items.len());
    let mut object_ids = Vec::with_capacity(items.len());
    let mut payloads = Vec::with_capacity(items.len());
    let mut event_ids = Vec::with_capacity(items.len());
    let mut subscription_types = Vec::with_capacity(items.len());
    let mut occurred = Vec::with_capacity(items.len());
    let mut property_names = Vec::with_capacity(items.len());
    let mut events = Vec::with_capacity(items.len());
    let mut received = Vec::with_capacity(items.len());
    let mut fired = Vec::with_capacity(items.len());
    let mut fetched = Vec::with_capacity(items.len());
    let mut sources = Vec::with_capacity(items.len());
    // JSON is written as text straight from the values, without building a
    // `serde_json::Value` tree of each first; PostgreSQL checks it into
    // `json` columns.
    for it in order.iter().map(|i| &items[*i]) {
        fetched.push(it.fetched.map(super::json_text).transpose()?);
        sources.push(it.sources_id);
        fired.push(domain::merges::fired_by_event(it.event));
        portal_ids.push(it.key.portal_id);
        event_types.push(it.conversion.event_type.as_str());
        order_ids.push(it.conversion.order_id.as_str());
        object_types.push(it.object_type.as_str());
        object_ids.push(it.key.object_id);
        payloads.push(super::json_text(&it.conversion.params)?);
        event_ids.push(it.key.event_id);
        subscription_types.push(it.key.subscription_type.as_str());
        occurred.push(it.key.occurred_at);
        property_names.push(it.key.property_name.as_str());
        events.push(super::json_text(it.event)?);
        received.push(it.received_at);
    }
    let rows = sqlx::query(
        "WITH c AS (
             INSERT INTO conversions (portal_id, event_type, order_id, object_type, object_id, payload, fired_by, fetched,
                 sources_id, lease_owner, lease_until)
             SELECT t.portal_id, t.event_type, t.order_id, t.object_type, t.object_id, t.payload, t.fired_by, t.fetched,
                 t.sources_id, $15, clock_timestamp() + $16 * interval '1 millisecond'
             FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::json[],
                 $13::text[], $14::json[], $17::bigint[])
                 AS t(portal_id, event_type, order_id, object_type, object_id, payload, fired_by, fetched, sources_id)
             WHERE EXISTS (SELECT 1 FROM portals p WHERE p.portal_id = t.portal_id)
             ON CONFLICT (portal_id, event_type, order_id) DO UPDATE SET
                 payload = CASE WHEN conversions.status = 'delivered' THEN conversions.payload ELSE EXCLUDED.payload END,
                 fetched = CASE WHEN conversions.status = 'delivered' THEN conversions.fetched ELSE EXCLUDED.fetched END,
                 sources_id = CASE WHEN conversions.status = 'delivered' THEN conversions.sources_id ELSE EXCLUDED.sources_id END,
                 fired_by = coalesce(conversions.fired_by, EXCLUDED.fired_by),
                 updated_at = now()
             RETURNING id, portal_id, event_type, order_id, status, attempts, (xmax = 0) AS created
         ), e AS (
             INSERT INTO webhook_events (portal_id, event_id, subscription_type, object_id, occurred_at,
                 property_name, status, conversion_id, event, received_at)
             SELECT t.portal_id, t.event_id, t.subscription_type, t.object_id, t.occurred_at,
                 t.property_name, 'converted', c.id, t.event, t.received_at
             FROM unnest($1::bigint[], $2::text[], $3::text[], $5::bigint[], $7::bigint[], $8::text[],
                 $9::bigint[], $10::text[], $11::json[], $12::timestamptz[])
                 AS t(portal_id, event_type, order_id, object_id, event_id, subscription_type,
                     occurred_at, property_name, event, received_at)
             JOIN c USING (portal_id, event_type, order_id)
             ON CONFLICT ON CONSTRAINT webhook_events_identity DO NOTHING
             RETURNING conversion_id
         )
         SELECT c.portal_id, c.event_type, c.order_id, c.id, c.status, c.attempts, c.created,
             e.conversion_id IS NOT NULL AS first
         FROM c LEFT JOIN e ON e.conversion_id = c.id",
    )
    .bind(&portal_ids)
    .bind(&event_types)
    .bind(&order_ids)
    .bind(object_types)
    .bind(object_ids)
    .bind(payloads)
    .bind(event_ids)
    .bind(subscription_types)
    .bind(occurred)
    .bind(property_names)
    .bind(events)
    .bind(received)
    .bind(fired)
    .bind(fetched)
    .bind(lease.token)
    .bind(lease.millis())
    .bind(sources)
    .fetch_all(db)
    .await?;
    if rows.len() != items.len() {
        // The only rows left out: their portal no longer exists (deleted
        // since the worker read it). Nothing is committed; the events are
        // retried, and then skipped as of an unknown portal.
        return Err(sqlx::Error::Protocol(format!(
            "recorded {} conversions for {} events: a portal was deleted meanwhile",
            rows.len(),
            items.len()
        )));
    }
    let mut by_key = std::collections::HashMap::with_capacity(rows.len());
    for row in &rows {
        let k: (i64, String, String) = (
            row.try_get("portal_id")?,
            row.try_get("event_type")?,
            row.try_get("order_id")?,
        );
        by_key.insert(
            k,
            (recorded_of(row, lease)?, row.try_get::<bool, _>("first")?),
        );
    }
    items
        .iter()
        .map(|it| {
            let (p, t, o) = key(it);
            by_key
                .remove(&(p, t.to_owned(), o.to_owned()))
                .ok_or(sqlx::Error::RowNotFound)
        })
        .collect()
}

/// The status of conversion `id`, if it exists.
pub async fn status<'e>(
    db: impl PgExecutor<'e>,
    id: i64,
) -> Result<Option<DeliveryStatus>, sqlx::Error> {
    let row = sqlx::query("SELECT status FROM conversions WHERE id = $1")
        .bind(id)
        .fetch_optional(db)
        .await?;
    row.as_ref().map(|r| super::text(r, "status")).transpose()
}

/// The payload sent (or to send) and the attempts of conversion `id`, if it exists.
pub async fn payload_and_attempts<'e>(
    db: impl PgExecutor<'e>,
    id: i64,
) -> Result<Option<(serde_json::Value, i32)>, sqlx::Error> {
    let row = sqlx::query("SELECT payload, attempts FROM conversions WHERE id = $1")
        .bind(id)
        .fetch_optional(db)
        .await?;
    row.map(|r| Ok((r.try_get("payload")?, r.try_get("attempts")?)))
        .transpose()
}

/// One POST of a conversion to impact.com, for the conversion page
/// (`delivery_attempts`).
#[derive(Debug, Clone)]
pub struct Attempt {
    /// The conversion.
    pub conversion_id: i64,
    /// HTTP status of the answer (`None`: no answer).
    pub http_status: Option<u16>,
    /// How long it took, in-process retries included.
    pub duration_ms: i32,
    /// `queued`, or the failure reason code.
    pub result: &'static str,
    /// The failure's detail.
    pub error: Option<String>,
    /// A replay's send of a conversion delivered before.
    pub resend: bool,
}

/// Records a delivery batch's attempts in one statement.
pub async fn record_attempts<'e>(
    db: impl PgExecutor<'e>,
    attempts: &[Attempt],
) -> Result<(), sqlx::Error> {
    if attempts.is_empty() {
        return Ok(());
    }
    let ids: Vec<i64> = attempts.iter().map(|a| a.conversion_id).collect();
    let statuses: Vec<Option<i16>> = attempts
        .iter()
        .map(|a| a.http_status.and_then(|s| i16::try_from(s).ok()))
        .collect();
    let durations: Vec<i32> = attempts.iter().map(|a| a.duration_ms).collect();
    let results: Vec<&str> = attempts.iter().map(|a| a.result).collect();
    let errors: Vec<Option<&str>> = attempts.iter().map(|a| a.error.as_deref()).collect();
    let resends: Vec<bool> = attempts.iter().map(|a| a.resend).collect();
    sqlx::query(
        "INSERT INTO delivery_attempts (conversion_id, http_status, duration_ms, result, error, resend)
         SELECT * FROM unnest($1::bigint[], $2::smallint[], $3::int[], $4::text[], $5::text[], $6::bool[])",
    )
    .bind(ids)
    .bind(statuses)
    .bind(durations)
    .bind(results)
    .bind(errors)
    .bind(resends)
    .execute(db)
    .await
    .map(|_| ())
}
