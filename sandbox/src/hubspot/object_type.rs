//! The CRM object types the fake serves.

use serde::Serialize;

/// The CRM object types the fake serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectType {
    /// `contacts`, object type id `0-1`.
    Contacts,
    /// `companies`, `0-2`.
    Companies,
    /// `deals`, `0-3`.
    Deals,
    /// `line_items`, `0-8`.
    LineItems,
}

impl ObjectType {
    /// All types, in a stable order.
    pub const ALL: [ObjectType; 4] = [
        ObjectType::Contacts,
        ObjectType::Companies,
        ObjectType::Deals,
        ObjectType::LineItems,
    ];

    /// The plural name used in URLs (`contacts`, `line_items`, ...).
    pub fn as_path(self) -> &'static str {
        match self {
            ObjectType::Contacts => "contacts",
            ObjectType::Companies => "companies",
            ObjectType::Deals => "deals",
            ObjectType::LineItems => "line_items",
        }
    }

    /// The singular name used in webhook subscription types (`deal.creation`).
    pub fn singular(self) -> &'static str {
        match self {
            ObjectType::Contacts => "contact",
            ObjectType::Companies => "company",
            ObjectType::Deals => "deal",
            ObjectType::LineItems => "line_item",
        }
    }

    /// HubSpot's object type id (`0-1` for contacts...).
    pub fn type_id(self) -> &'static str {
        match self {
            ObjectType::Contacts => "0-1",
            ObjectType::Companies => "0-2",
            ObjectType::Deals => "0-3",
            ObjectType::LineItems => "0-8",
        }
    }

    /// Parses a path segment: plural, singular or type id, case-insensitive.
    pub fn parse(s: &str) -> Option<ObjectType> {
        let s = s.to_ascii_lowercase();
        ObjectType::ALL.into_iter().find(|t| {
            s == t.as_path()
                || s == t.singular()
                || s == t.type_id()
                || s == t.as_path().replace('_', "")
        })
    }

    /// Where ids of this type start, so that an id of one type is never a
    /// valid id of another (mix-ups show up as 404s).
    pub(crate) fn id_base(self) -> u64 {
        match self {
            ObjectType::Contacts => 1_000_000,
            ObjectType::Companies => 2_000_000,
            ObjectType::Deals => 3_000_000,
            ObjectType::LineItems => 4_000_000,
        }
    }

    /// The property holding the last-modified date.
    pub fn last_modified_property(self) -> &'static str {
        match self {
            ObjectType::Contacts => "lastmodifieddate",
            _ => "hs_lastmodifieddate",
        }
    }
}

impl std::fmt::Display for ObjectType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_path())
    }
}
