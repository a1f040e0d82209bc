//! Event triggers: which HubSpot events become conversions.
//!
//! "Active" fires on an object's creation; property triggers fire when one
//! of the listed properties changes (several act as OR). A property trigger
//! may carry a value condition (`{"property":"dealstage","values":["closedwon"]}`),
//! which goes beyond the seed.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{events::HubSpotEvent, object_type::ObjectType};

/// The triggers of one portal, per object type.
pub type TriggerSet = BTreeMap<ObjectType, ObjectTriggers>;

/// The triggers of one object type.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectTriggers {
    /// Fire when an object is created ("Active").
    #[serde(default)]
    pub on_create: bool,
    /// Fire when one of these properties changes.
    #[serde(default)]
    pub on_change: Vec<PropertyTrigger>,
}

/// One watched property, optionally only for some new values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "PropertyTriggerDoc", into = "PropertyTriggerDoc")]
pub struct PropertyTrigger {
    /// Internal property name, e.g. `dealstage`.
    pub property: String,
    /// When set, fire only when the new value is one of these.
    pub only_values: Option<Vec<String>>,
}

/// Document form: a bare property name, or an object with a value condition.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
enum PropertyTriggerDoc {
    Name(String),
    Conditional {
        property: String,
        values: Vec<String>,
    },
}

impl From<PropertyTriggerDoc> for PropertyTrigger {
    fn from(doc: PropertyTriggerDoc) -> Self {
        match doc {
            PropertyTriggerDoc::Name(property) => Self {
                property,
                only_values: None,
            },
            PropertyTriggerDoc::Conditional { property, values } => Self {
                property,
                only_values: Some(values),
            },
        }
    }
}

impl From<PropertyTrigger> for PropertyTriggerDoc {
    fn from(t: PropertyTrigger) -> Self {
        match t.only_values {
            None => Self::Name(t.property),
            Some(values) => Self::Conditional {
                property: t.property,
                values,
            },
        }
    }
}

/// What fired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Firing {
    /// The object was created.
    Creation,
    /// A watched property changed; `value` is the new value from the event.
    PropertyChange {
        /// The property.
        property: String,
        /// Its new value as HubSpot sent it (`None`: cleared).
        value: Option<String>,
    },
}

/// Why an event does not become a conversion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IgnoreReason {
    /// Not a contact, company or deal event.
    UnsupportedObject,
    /// Deletion, association change or an unknown action.
    UnsupportedAction,
    /// A merge: no trigger fires (the merged record's conversions stay its
    /// own, see `crate::merges`); the pipeline records the merged ids.
    Merge,
    /// A restore of a deleted record: not a creation, so no trigger fires
    /// (what converted before the deletion stays as it is).
    Restore,
    /// No trigger is configured for the object type or the action.
    NotEnabled,
    /// A property change of a property no trigger watches.
    PropertyNotWatched,
    /// A watched property changed to a value its condition excludes.
    ValueNotMatched,
}

impl IgnoreReason {
    /// Stable snake-case name (metrics labels, stored reasons).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UnsupportedObject => "unsupported_object",
            Self::UnsupportedAction => "unsupported_action",
            Self::Merge => "merge",
            Self::Restore => "restore",
            Self::NotEnabled => "trigger_not_enabled",
            Self::PropertyNotWatched => "property_not_watched",
            Self::ValueNotMatched => "value_not_matched",
        }
    }
}

/// The verdict on one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Convert the object of this type.
    Fire(ObjectType, Firing),
    /// Do nothing, for this reason.
    Ignore(IgnoreReason),
}

/// The object type an event is about (`contact.*`, or `object.*` with `objectTypeId`).
pub fn object_type_of(event: &HubSpotEvent) -> Option<ObjectType> {
    let (prefix, _) = event.object_and_action()?;
    if prefix == "object" {
        let id = event.extra.get("objectTypeId")?.as_str()?;
        return ObjectType::from_type_id(id);
    }
    ObjectType::from_subscription_prefix(prefix)
}

/// Decides whether `event` fires one of `triggers`. Pure.
pub fn evaluate(triggers: &TriggerSet, event: &HubSpotEvent) -> Decision {
    let Some(object_type) = object_type_of(event) else {
        return Decision::Ignore(IgnoreReason::UnsupportedObject);
    };
    let action = event.object_and_action().map_or("", |(_, a)| a);
    match action {
        "merge" => return Decision::Ignore(IgnoreReason::Merge),
        "restore" => return Decision::Ignore(IgnoreReason::Restore),
        _ => {}
    }
    let Some(config) = triggers.get(&object_type) else {
        return Decision::Ignore(match action {
            "creation" | "propertyChange" => IgnoreReason::NotEnabled,
            _ => IgnoreReason::UnsupportedAction,
        });
    };
    match action {
        "creation" if config.on_create => Decision::Fire(object_type, Firing::Creation),
        "creation" => Decision::Ignore(IgnoreReason::NotEnabled),
        "propertyChange" => {
            let Some(name) = event.property_name.as_deref() else {
                return Decision::Ignore(IgnoreReason::PropertyNotWatched);
            };
            let watching: Vec<&PropertyTrigger> = config
                .on_change
                .iter()
                .filter(|t| t.property == name)
                .collect();
            if watching.is_empty() {
                return Decision::Ignore(if config.on_change.is_empty() {
                    IgnoreReason::NotEnabled
                } else {
                    IgnoreReason::PropertyNotWatched
                });
            }
            let value = event.property_value.as_deref();
            let matches = watching.iter().any(|t| match &t.only_values {
                None => true,
                Some(values) => value.is_some_and(|v| values.iter().any(|x| x == v)),
            });
            if !matches {
                return Decision::Ignore(IgnoreReason::ValueNotMatched);
            }
            Decision::Fire(
                object_type,
                Firing::PropertyChange {
                    property: name.to_owned(),
                    value: event.property_value.clone(),
                },
            )
        }
        _ => Decision::Ignore(IgnoreReason::UnsupportedAction),
    }
}

#[cfg(test)]
#[path = "triggers_tests.rs"]
mod tests;
