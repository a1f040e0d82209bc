//! Writing dead letters: a permanent failure of one event (from the
//! pipeline), a message whose retries are exhausted (from the consumer), a
//! poison or malformed message (from the dead-letter sink).

use domain::{
    events::HubSpotEvent,
    failure::{Failure, truncate},
    mapping::Context,
    object_type::ObjectType,
};
use serde_json::{Value, json};
use shared::db::{
    self,
    dead_letters::{NewDeadLetter, ReasonClass},
    events::EventKey,
};

use crate::{Worker, pipeline::result::EventResult};

/// The identity of an event as text (one open dead letter per event).
pub fn event_key(e: &HubSpotEvent) -> String {
    let k = EventKey::of(e);
    format!(
        "event:{}:{}:{}:{}:{}:{}",
        k.portal_id,
        k.event_id.map_or_else(|| "-".into(), |i| i.to_string()),
        k.subscription_type,
        k.object_id,
        k.occurred_at,
        k.property_name
    )
}

/// The object as fetched, for the dead letter (what the mapping saw).
pub fn context_json(ctx: &Context) -> Value {
    json!({
        "properties": ctx.properties,
        "trigger": ctx.trigger,
        "line_items": ctx.line_items,
        "associated_contact_id": ctx.associated_contact_id,
        "stage_label": ctx.stage_label,
        "currency": ctx.currency,
        "company_currency": ctx.company_currency,
    })
}

/// Stores the permanent failure of `event`, with the fetched object and the
/// conversion's payload and attempts when there is one.
pub async fn permanent(
    w: &Worker,
    event: &HubSpotEvent,
    object_type: Option<ObjectType>,
    f: &Failure,
    fetched: Option<Value>,
    conversion_id: Option<i64>,
) -> Result<(), Failure> {
    let (payload, attempts) = match conversion_id {
        Some(id) => {
            let row = db::conversions::payload_and_attempts(&w.pool, id)
                .await
                .map_err(Failure::database)?;
            row.map_or((None, 1), |(payload, attempts)| (Some(payload), attempts))
        }
        None => (None, 1),
    };
    let letter = NewDeadLetter {
        portal_id: i64::try_from(event.portal_id.0).ok(),
        object_type: object_type.map(|t| t.as_str().to_owned()),
        object_id: i64::try_from(event.object_id).ok(),
        reason_class: Some(ReasonClass::Permanent),
        reason: f.reason.to_string(),
        last_status: f.status,
        last_error: Some(truncate(&f.detail, 4000)),
        attempts,
        events: json!([event]),
        event_key: Some(event_key(event)),
        fetched_object: fetched,
        payload,
        conversion_id,
        adjustment_id: None,
    };
    store(w, &letter).await
}

/// A delivery impact.com refused for good goes to the dead-letter store
/// with the payload and the object as fetched (turned into JSON only then).
pub async fn refused(
    w: &Worker,
    event: &HubSpotEvent,
    object_type: Option<ObjectType>,
    result: &Result<EventResult, Failure>,
    fetched: Option<&Context>,
    conversion_id: i64,
) -> Result<(), Failure> {
    let Ok(EventResult::Failed(f)) = result else {
        return Ok(());
    };
    let fetched = fetched.map(context_json);
    permanent(w, event, object_type, f, fetched, Some(conversion_id)).await
}

/// Stores a whole message given up on (`exhausted`, `poison`, `malformed`).
pub async fn message(
    w: &Worker,
    class: ReasonClass,
    body: &[u8],
    message_id: Option<&str>,
    attempts: u32,
    f: &Failure,
) -> Result<(), Failure> {
    let events: Value = serde_json::from_slice(body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()));
    let first = match &events {
        Value::Array(a) => a.first(),
        v @ Value::Object(_) => Some(v),
        _ => None,
    };
    let field = |name: &str| first.and_then(|e| e.get(name)).and_then(Value::as_i64);
    let object_type = first
        .and_then(|e| e.get("subscriptionType"))
        .and_then(Value::as_str)
        .and_then(|s| s.split('.').next())
        .and_then(ObjectType::from_subscription_prefix)
        .map(|t| t.as_str().to_owned());
    let letter = NewDeadLetter {
        portal_id: field("portalId"),
        object_type,
        object_id: field("objectId"),
        reason_class: Some(class),
        reason: f.reason.to_string(),
        last_status: f.status,
        last_error: Some(truncate(&f.detail, 4000)),
        attempts: i32::try_from(attempts).unwrap_or(i32::MAX),
        events,
        // A message stored twice (an ack lost after the insert) stays one dead letter.
        event_key: message_id.map(|m| format!("message:{m}")),
        fetched_object: None,
        payload: None,
        conversion_id: None,
        adjustment_id: None,
    };
    store(w, &letter).await
}

pub(crate) async fn store(w: &Worker, letter: &NewDeadLetter) -> Result<(), Failure> {
    let id = db::dead_letters::insert(&w.pool, letter)
        .await
        .map_err(Failure::database)?;
    let class = letter.reason_class.map_or("permanent", ReasonClass::as_str);
    metrics::counter!("worker_dead_letters_total", "class" => class, "reason" => letter.reason.clone())
        .increment(1);
    tracing::warn!(dead_letter = ?id, portal = ?letter.portal_id, class, reason = %letter.reason, "event dead-lettered");
    Ok(())
}
