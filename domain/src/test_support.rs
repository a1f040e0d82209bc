//! Builders shared by the unit tests of several modules.

use crate::events::{HubSpotEvent, PortalId};

/// An event of `kind` for object 123 of portal 62515, with the changed
/// property and its value when given.
pub(crate) fn event(kind: &str, prop: Option<(&str, &str)>) -> HubSpotEvent {
    HubSpotEvent {
        event_id: Some(1),
        subscription_id: None,
        portal_id: PortalId(62515),
        app_id: None,
        occurred_at: 1_564_113_600_000,
        subscription_type: kind.into(),
        attempt_number: Some(0),
        object_id: 123,
        property_name: prop.map(|p| p.0.to_owned()),
        property_value: prop.map(|p| p.1.to_owned()),
        change_source: None,
        change_flag: None,
        source_id: None,
        extra: Default::default(),
    }
}
