//! HubSpot webhook events: validation of a delivery's body (ingest) and the
//! typed view the worker reads back from the queue.
//!
//! Ingest never re-serialises an event: each event's exact bytes travel to
//! the queue, so every field HubSpot sent (known or not) is preserved.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// A HubSpot account (hub id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PortalId(pub u64);

impl PortalId {
    /// The id as stored (PostgreSQL `bigint`); -1, which matches no row,
    /// for an id beyond `i64` (HubSpot's hub ids are far below).
    pub fn db_key(self) -> i64 {
        i64::try_from(self.0).unwrap_or(-1)
    }
}

impl std::fmt::Display for PortalId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// One webhook event as HubSpot sends it. Unknown fields are kept in `extra`.
///
/// Reading is deliberately tolerant (whatever ingest accepted must decode
/// here): `eventType` stands in for `subscriptionType`, and optional text
/// fields that arrive as numbers or objects are kept as their JSON text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", from = "RawEvent")]
pub struct HubSpotEvent {
    /// Id of the notification (not unique on its own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<u64>,
    /// The app subscription that matched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription_id: Option<u64>,
    /// The HubSpot account.
    pub portal_id: PortalId,
    /// The app.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_id: Option<u64>,
    /// Epoch milliseconds of the change.
    pub occurred_at: u64,
    /// e.g. `deal.propertyChange`; HubSpot's docs also call it `eventType`.
    pub subscription_type: String,
    /// 0 on first delivery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt_number: Option<u32>,
    /// The record's id.
    pub object_id: u64,
    /// Property changes: the property.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub property_name: Option<String>,
    /// Property changes: the new value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub property_value: Option<String>,
    /// e.g. `CRM`, `IMPORT`, `API`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change_source: Option<String>,
    /// e.g. `NEW` on creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change_flag: Option<String>,
    /// Who or what made the change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_id: Option<String>,
    /// Every other field, as sent.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// The wire form, converted into [`HubSpotEvent`].
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawEvent {
    #[serde(default)]
    event_id: Option<u64>,
    #[serde(default)]
    subscription_id: Option<u64>,
    portal_id: PortalId,
    #[serde(default)]
    app_id: Option<u64>,
    occurred_at: u64,
    #[serde(default, deserialize_with = "lenient_text")]
    subscription_type: Option<String>,
    #[serde(default, deserialize_with = "lenient_text")]
    event_type: Option<String>,
    #[serde(default)]
    attempt_number: Option<u32>,
    object_id: u64,
    #[serde(default, deserialize_with = "lenient_text")]
    property_name: Option<String>,
    #[serde(default, deserialize_with = "lenient_text")]
    property_value: Option<String>,
    #[serde(default, deserialize_with = "lenient_text")]
    change_source: Option<String>,
    #[serde(default, deserialize_with = "lenient_text")]
    change_flag: Option<String>,
    #[serde(default, deserialize_with = "lenient_text")]
    source_id: Option<String>,
    #[serde(flatten)]
    extra: serde_json::Map<String, serde_json::Value>,
}

impl From<RawEvent> for HubSpotEvent {
    fn from(r: RawEvent) -> Self {
        let mut extra = r.extra;
        // When both names are present, `subscriptionType` wins and the other
        // is kept as sent.
        let subscription_type = match (r.subscription_type, r.event_type) {
            (Some(s), Some(e)) => {
                extra.insert("eventType".into(), serde_json::Value::String(e));
                s
            }
            (Some(s), None) | (None, Some(s)) => s,
            (None, None) => String::new(),
        };
        Self {
            event_id: r.event_id,
            subscription_id: r.subscription_id,
            portal_id: r.portal_id,
            app_id: r.app_id,
            occurred_at: r.occurred_at,
            subscription_type,
            attempt_number: r.attempt_number,
            object_id: r.object_id,
            property_name: r.property_name,
            property_value: r.property_value,
            change_source: r.change_source,
            change_flag: r.change_flag,
            source_id: r.source_id,
            extra,
        }
    }
}

/// A text field: strings as they are, `null` as absent, anything else
/// (numbers, booleans, objects) as its JSON text.
fn lenient_text<'de, D: serde::Deserializer<'de>>(de: D) -> Result<Option<String>, D::Error> {
    Ok(match serde_json::Value::deserialize(de)? {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s),
        other => Some(other.to_string()),
    })
}

impl HubSpotEvent {
    /// Splits `deal.propertyChange` into `("deal", "propertyChange")`.
    pub fn object_and_action(&self) -> Option<(&str, &str)> {
        self.subscription_type.split_once('.')
    }
}

/// Why a webhook body was refused; the message names the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    /// Not parseable JSON.
    #[error("body is not valid JSON: {0}")]
    NotJson(String),
    /// JSON, but not an array of events.
    #[error("body must be a JSON array of events")]
    NotArray,
    /// `[]`.
    #[error("body is an empty array: at least one event is required")]
    Empty,
    /// More events than allowed in one request.
    #[error("too many events in one request: {count} (at most {limit})")]
    TooMany {
        /// Events received.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// One event is malformed.
    #[error("event {index}: {problem}")]
    BadEvent {
        /// Zero-based position in the array.
        index: usize,
        /// What is wrong.
        problem: String,
    },
}

/// The fields ingest insists on, with the types HubSpot documents.
/// Borrowing keeps validation allocation-free for the common case.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // Fields exist to be type-checked.
struct EventCheck<'a> {
    event_id: Option<u64>,
    subscription_id: Option<u64>,
    portal_id: u64,
    app_id: Option<u64>,
    occurred_at: u64,
    #[serde(borrow, default)]
    subscription_type: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    event_type: Option<std::borrow::Cow<'a, str>>,
    attempt_number: Option<u32>,
    object_id: u64,
    #[serde(borrow, default)]
    property_name: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    property_value: Option<std::borrow::Cow<'a, str>>,
}

/// The events of one portal from one delivery, ready to enqueue: `body` is a
/// JSON array of the events' original bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortalBatch {
    /// The portal all these events belong to.
    pub portal_id: PortalId,
    /// Number of events.
    pub events: usize,
    /// `[event,event,...]`, each event byte-for-byte as received.
    pub body: Vec<u8>,
}

/// Validates a webhook body and groups its events by portal (HubSpot sends
/// one portal per request, but nothing is lost if a request mixes them).
pub fn parse_delivery(body: &[u8], max_events: usize) -> Result<Vec<PortalBatch>, PayloadError> {
    let value: &RawValue =
        serde_json::from_slice(body).map_err(|e| PayloadError::NotJson(e.to_string()))?;
    if !value.get().trim_start().starts_with('[') {
        return Err(PayloadError::NotArray);
    }
    let items: Vec<&RawValue> =
        serde_json::from_str(value.get()).map_err(|e| PayloadError::NotJson(e.to_string()))?;
    if items.is_empty() {
        return Err(PayloadError::Empty);
    }
    if items.len() > max_events {
        return Err(PayloadError::TooMany {
            count: items.len(),
            limit: max_events,
        });
    }
    let mut batches: Vec<PortalBatch> = Vec::with_capacity(1);
    for (index, raw) in items.iter().enumerate() {
        let bad = |problem: String| PayloadError::BadEvent { index, problem };
        if !raw.get().starts_with('{') {
            return Err(bad("must be a JSON object".into()));
        }
        if nesting_depth(raw.get()) > MAX_EVENT_DEPTH {
            // The worker's decoder stops at 128 levels: refuse here what it
            // could not read later.
            return Err(bad(format!("nested deeper than {MAX_EVENT_DEPTH} levels")));
        }
        let ev: EventCheck<'_> =
            serde_json::from_str(raw.get()).map_err(|e| bad(strip_position(&e)))?;
        let kind = match (&ev.subscription_type, &ev.event_type) {
            (Some(k), _) | (None, Some(k)) => k,
            (None, None) => return Err(bad("missing field `subscriptionType`".into())),
        };
        if kind.is_empty() {
            return Err(bad("`subscriptionType` is empty".into()));
        }
        if !is_subscription_type(kind) {
            return Err(bad(
                "`subscriptionType` must look like `object.action` (letters, digits, `_`, `-`)"
                    .into(),
            ));
        }
        if ev
            .property_name
            .as_deref()
            .is_some_and(|n| !is_property_name(n))
        {
            return Err(bad(
                "`propertyName` must be a HubSpot internal name (letters, digits, `_`, `-`, `.`; at most 200)"
                    .into(),
            ));
        }
        let portal = PortalId(ev.portal_id);
        let batch = match batches.iter_mut().find(|b| b.portal_id == portal) {
            Some(b) => b,
            None => {
                batches.push(PortalBatch {
                    portal_id: portal,
                    events: 0,
                    body: vec![b'['],
                });
                batches.last_mut().expect("just pushed")
            }
        };
        if batch.events > 0 {
            batch.body.push(b',');
        }
        batch.body.extend_from_slice(raw.get().as_bytes());
        batch.events += 1;
    }
    for b in &mut batches {
        b.body.push(b']');
    }
    Ok(batches)
}

/// How deep an event's JSON may nest (HubSpot's events are 1 or 2 deep).
pub const MAX_EVENT_DEPTH: usize = 32;

/// The deepest nesting of arrays and objects in valid JSON text.
fn nesting_depth(json: &str) -> usize {
    let (mut depth, mut max, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for b in json.bytes() {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                max = max.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// `object.action` (e.g. `contact.propertyChange`, `object.newThing`),
/// at most 100 ASCII characters: anything else (SQL, markup, control
/// characters) cannot be a HubSpot subscription type.
fn is_subscription_type(kind: &str) -> bool {
    let word = |w: &str| {
        !w.is_empty()
            && w.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    };
    kind.len() <= 100
        && kind
            .split_once('.')
            .is_some_and(|(o, a)| word(o) && word(a))
}

/// HubSpot property internal names: ASCII letters, digits, `_`, `-`, `.`.
fn is_property_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 200
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// serde_json's messages end in "at line 1 column 57", which means nothing
/// to a caller looking at one event: keep the substance only.
fn strip_position(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_owned(),
        None => msg,
    }
}

/// Reads a queued message body: one event object or an array of them.
pub fn decode_message(body: &[u8]) -> Result<Vec<HubSpotEvent>, serde_json::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        Many(Vec<HubSpotEvent>),
        One(Box<HubSpotEvent>),
    }
    Ok(match serde_json::from_slice(body)? {
        OneOrMany::Many(v) => v,
        OneOrMany::One(e) => vec![*e],
    })
}

#[cfg(test)]
mod tests;
