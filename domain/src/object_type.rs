//! The HubSpot CRM object types the connector converts.

use serde::{Deserialize, Serialize};

/// A CRM object type, named as in the CRM API paths (`contacts`, `companies`, `deals`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ObjectType {
    /// `contact.*` events, object type id `0-1`.
    Contacts,
    /// `company.*` events, object type id `0-2`.
    Companies,
    /// `deal.*` events, object type id `0-3`.
    Deals,
}

impl ObjectType {
    /// Every supported type.
    pub const ALL: [ObjectType; 3] = [Self::Contacts, Self::Companies, Self::Deals];

    /// The plural name used in API paths and configuration documents.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Contacts => "contacts",
            Self::Companies => "companies",
            Self::Deals => "deals",
        }
    }

    /// Parses the plural name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == name)
    }

    /// The type named by a subscription type's prefix (`deal` of `deal.creation`).
    pub fn from_subscription_prefix(prefix: &str) -> Option<Self> {
        match prefix {
            "contact" => Some(Self::Contacts),
            "company" => Some(Self::Companies),
            "deal" => Some(Self::Deals),
            _ => None,
        }
    }

    /// The type of a generic `object.*` event's `objectTypeId`.
    pub fn from_type_id(id: &str) -> Option<Self> {
        match id {
            "0-1" => Some(Self::Contacts),
            "0-2" => Some(Self::Companies),
            "0-3" => Some(Self::Deals),
            _ => None,
        }
    }

    /// The property holding the last modification date.
    pub fn last_modified_property(self) -> &'static str {
        match self {
            Self::Contacts => "lastmodifieddate",
            Self::Companies | Self::Deals => "hs_lastmodifieddate",
        }
    }
}

impl std::fmt::Display for ObjectType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
