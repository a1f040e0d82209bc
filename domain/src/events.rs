//! HubSpot webhook events: validation of a delivery's body (ingest) and the
//! typed view the worker reads back from the queue.
//!
//! Ingest never re-serialises an event: each event's exact bytes travel to
//! the queue, so every field HubSpot sent (known or not) is preserved.

use serde::{Deserialize, Serialize};

mod delivery;

pub use delivery::{
    IgnoredEvent, InvalidEvent, MAX_EVENT_DEPTH, ParsedDelivery, PayloadError, PortalBatch,
    ReadDelivery, parse_delivery, pipeline_reads, read_delivery,
};

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
