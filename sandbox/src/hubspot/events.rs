//! The shapes of webhook events and of the delivery options and counters.

use serde::{Deserialize, Serialize};

/// One notification, field for field as HubSpot sends it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookEvent {
    /// Notification id (not unique on its own, as with HubSpot).
    pub event_id: u64,
    /// The app subscription that matched.
    pub subscription_id: u64,
    /// The HubSpot account.
    pub portal_id: u64,
    /// The app.
    pub app_id: u64,
    /// Epoch milliseconds of the change.
    pub occurred_at: i64,
    /// E.g. `deal.propertyChange`.
    pub subscription_type: String,
    /// 0 on first delivery, counts up on retries.
    pub attempt_number: u32,
    /// The record's id; 0 (and not sent) for an association change, which
    /// names its records in `fromObjectId`/`toObjectId` instead.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub object_id: u64,
    /// Property changes only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub property_name: Option<String>,
    /// Property changes only: the new value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub property_value: Option<String>,
    /// `CRM`, `IMPORT`, `API`...
    pub change_source: String,
    /// `NEW` on creation, `DELETED` on deletion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change_flag: Option<String>,
    /// Who made the change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_id: Option<String>,
    /// Merges: the primary record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_object_id: Option<u64>,
    /// Merges: the records merged into the primary one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub merged_object_ids: Vec<u64>,
    /// Merges: the record the merge made (HubSpot makes a new one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_object_id: Option<u64>,
    /// Merges: how many property values came from the merged records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number_of_properties_moved: Option<u64>,
    /// Association changes (`{type}.associationChange`) only.
    #[serde(flatten)]
    pub association: Option<AssociationChange>,
}

/// What an association-change event says, field for field as HubSpot sends it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssociationChange {
    /// E.g. `CONTACT_TO_COMPANY`.
    pub association_type: String,
    /// The record of the subscription's type.
    pub from_object_id: u64,
    /// The record linked to (or unlinked from) it.
    pub to_object_id: u64,
    /// True when the link was removed.
    pub association_removed: bool,
    /// True for a primary association.
    pub is_primary_association: bool,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// How events are delivered, beyond HubSpot's defaults.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeliveryOptions {
    /// Share (0..=1) of events delivered a second time, later.
    #[serde(default)]
    pub duplicate_share: f64,
    /// Shuffle the events of each emission (so `occurredAt` goes backwards).
    #[serde(default)]
    pub out_of_order: bool,
}

/// Delivery counters.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct WebhookStats {
    /// Events created by changes.
    pub emitted: u64,
    /// Changes no active subscription of the app covers: no event is
    /// created for them (not counted in `emitted`).
    pub unsubscribed: u64,
    /// Events not sent: no webhook target was set, or the app is uninstalled on the portal.
    pub undeliverable: u64,
    /// HTTP requests made (first attempts and retries).
    pub requests: u64,
    /// Requests answered 2xx.
    pub delivered_batches: u64,
    /// Events in those requests.
    pub delivered_events: u64,
    /// Requests that failed (non-2xx, timeout, connection error).
    pub failed_attempts: u64,
    /// Events given up on after the last retry.
    pub gave_up_events: u64,
    /// Events queued or in flight now.
    pub pending: usize,
    /// Most requests seen in flight at once for one portal.
    pub max_in_flight_seen: usize,
}
