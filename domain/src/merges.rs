//! HubSpot merges, read from `*.merge` events and from the merged record.
//!
//! A merge event names the primary record (`primaryObjectId`), the records
//! merged into it (`mergedObjectIds`) and, when the merge made a new record
//! (HubSpot does for contacts and companies, as for other objects),
//! `newObjectId`. Every id of the group then reads as the resulting record,
//! whose `hs_merged_object_ids` lists the ids merged into it. The ids here
//! are read tolerantly (numbers or numeric strings) from the fields ingest
//! kept as sent.

use crate::{events::HubSpotEvent, triggers::Firing};

/// The property listing the ids merged into a record (`;`-separated).
pub const MERGED_IDS_PROPERTY: &str = "hs_merged_object_ids";

/// What a merge event says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Merge {
    /// The record the group is now: `newObjectId`, else `primaryObjectId`,
    /// else the event's `objectId`.
    pub survivor: u64,
    /// Every other id of the event (the primary when a new record was made,
    /// the merged ones, the event's `objectId`), ascending, without the
    /// survivor.
    pub merged: Vec<u64>,
}

fn id_of(v: &serde_json::Value) -> Option<u64> {
    match v {
        serde_json::Value::Number(n) => n.as_u64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

impl Merge {
    /// The merge `event` reports; `None` for other events and for a merge
    /// that names no other id.
    pub fn of(event: &HubSpotEvent) -> Option<Merge> {
        if event.object_and_action().map(|(_, a)| a) != Some("merge") {
            return None;
        }
        let field = |name: &str| event.extra.get(name).and_then(id_of);
        let primary = field("primaryObjectId");
        let survivor = field("newObjectId").or(primary).unwrap_or(event.object_id);
        let mut merged: Vec<u64> = event
            .extra
            .get("mergedObjectIds")
            .and_then(serde_json::Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(id_of)
            .chain(primary)
            .chain(Some(event.object_id))
            .filter(|id| *id != survivor)
            .collect();
        merged.sort_unstable();
        merged.dedup();
        (!merged.is_empty()).then_some(Merge { survivor, merged })
    }
}

/// The ids in a `hs_merged_object_ids` value (`"101;102"`); others are skipped.
pub fn merged_ids(value: Option<&str>) -> Vec<u64> {
    value
        .unwrap_or_default()
        .split(';')
        .filter_map(|s| s.trim().parse().ok())
        .collect()
}

/// What fired a conversion, as stored with it: `creation`, or
/// `<property>=<value>` (an empty value when the property was cleared).
pub fn fired_by(firing: &Firing) -> String {
    match firing {
        Firing::Creation => "creation".into(),
        Firing::PropertyChange { property, value } => {
            format!("{property}={}", value.as_deref().unwrap_or_default())
        }
    }
}

/// [`fired_by`] of the event itself (creation or property change); `None`
/// for other events.
pub fn fired_by_event(event: &HubSpotEvent) -> Option<String> {
    match event.object_and_action()?.1 {
        "creation" => Some(fired_by(&Firing::Creation)),
        "propertyChange" => Some(fired_by(&Firing::PropertyChange {
            property: event.property_name.clone()?,
            value: event.property_value.clone(),
        })),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn merge(fields: serde_json::Value) -> HubSpotEvent {
        let mut e = serde_json::json!({
            "portalId": 1, "occurredAt": 5, "subscriptionType": "contact.merge", "objectId": 300,
        });
        e.as_object_mut()
            .expect("object")
            .extend(fields.as_object().expect("object").clone());
        serde_json::from_value(e).expect("an event")
    }

    #[test]
    fn a_merge_into_a_new_record_groups_every_id_under_it() {
        let m = Merge::of(&merge(serde_json::json!({
            "primaryObjectId": 200, "mergedObjectIds": [100], "newObjectId": 300,
            "numberOfPropertiesMoved": 4,
        })))
        .expect("a merge");
        assert_eq!(
            m,
            Merge {
                survivor: 300,
                merged: vec![100, 200]
            }
        );
    }

    #[test]
    fn a_merge_keeping_the_primary_id_and_ids_as_strings() {
        let m = Merge::of(&merge(serde_json::json!({
            "objectId": 200, "primaryObjectId": "200", "mergedObjectIds": ["100", 101],
        })))
        .expect("a merge");
        assert_eq!(
            m,
            Merge {
                survivor: 200,
                merged: vec![100, 101]
            }
        );
        // Without the merge fields: nothing to group.
        assert_eq!(Merge::of(&merge(serde_json::json!({}))), None);
        let mut other = merge(serde_json::json!({"mergedObjectIds": [1]}));
        other.subscription_type = "contact.creation".into();
        assert_eq!(Merge::of(&other), None);
    }

    #[test]
    fn merged_ids_and_firings_read_as_stored() {
        assert_eq!(merged_ids(Some("101;102; x ;103")), vec![101, 102, 103]);
        assert!(merged_ids(None).is_empty());
        let change = Firing::PropertyChange {
            property: "dealstage".into(),
            value: Some("closedwon".into()),
        };
        assert_eq!(fired_by(&change), "dealstage=closedwon");
        assert_eq!(fired_by(&Firing::Creation), "creation");
    }
}
