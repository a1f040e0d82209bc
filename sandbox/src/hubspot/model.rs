//! The fake HubSpot's records: object types, objects, associations, portals.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

pub use super::object_type::ObjectType;
use super::schema::{self, PropertyDef};

/// HubSpot's association type id and v3 label for a pair of types.
pub(crate) fn association_type(from: ObjectType, to: ObjectType) -> (u32, String) {
    use ObjectType::*;
    let id = match (from, to) {
        (Contacts, Companies) => 279,
        (Companies, Contacts) => 280,
        (Deals, Contacts) => 3,
        (Contacts, Deals) => 4,
        (Deals, Companies) => 341,
        (Companies, Deals) => 342,
        (Deals, LineItems) => 19,
        (LineItems, Deals) => 20,
        _ => 0,
    };
    (id, format!("{}_to_{}", from.singular(), to.singular()))
}

/// One CRM record as the fake stores it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CrmObject {
    /// The record id.
    pub id: u64,
    /// Its type.
    pub object_type: ObjectType,
    /// Property values, all strings (as HubSpot stores them).
    pub properties: BTreeMap<String, String>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last modification time.
    pub updated_at: DateTime<Utc>,
    /// Deleted (archived) records stay, flagged.
    pub archived: bool,
}

/// HubSpot's datetime rendering: `2026-01-02T03:04:05.678Z`.
pub fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// One portal (HubSpot account) and everything in it.
#[derive(Debug)]
pub(crate) struct Portal {
    pub(crate) id: u64,
    pub(crate) private_app_token: Option<String>,
    /// Whether the public app is installed (OAuth tokens usable).
    pub(crate) installed: bool,
    pub(crate) objects: HashMap<ObjectType, BTreeMap<u64, CrmObject>>,
    /// Associations, stored in both directions.
    pub(crate) associations: HashMap<(ObjectType, u64), BTreeMap<ObjectType, BTreeSet<u64>>>,
    pub(crate) properties: HashMap<ObjectType, Vec<PropertyDef>>,
    /// The company currency of the account information (`None`: absent).
    pub(crate) company_currency: Option<String>,
    /// Reads of the account information.
    pub(crate) account_info_reads: u64,
    next_id: HashMap<ObjectType, u64>,
    /// Ids merged away, and the record each reads as now (kept flat).
    pub(crate) merged_into: HashMap<(ObjectType, u64), u64>,
}

impl Portal {
    pub(crate) fn new(id: u64, private_app_token: Option<String>) -> Portal {
        let properties = ObjectType::ALL
            .into_iter()
            .map(|t| (t, schema::properties(t)))
            .collect();
        Portal {
            id,
            private_app_token,
            installed: true,
            objects: HashMap::new(),
            associations: HashMap::new(),
            properties,
            company_currency: Some(super::account::DEFAULT_CURRENCY.into()),
            account_info_reads: 0,
            next_id: HashMap::new(),
            merged_into: HashMap::new(),
        }
    }

    /// The record `id` reads as: the one it was merged into, else itself
    /// (HubSpot answers a merged-away id with the merged record).
    pub(crate) fn resolve(&self, object_type: ObjectType, id: u64) -> u64 {
        self.merged_into
            .get(&(object_type, id))
            .copied()
            .unwrap_or(id)
    }

    /// Creates a record with the given properties; fills `hs_object_id`,
    /// `createdate` and the last-modified property.
    pub(crate) fn insert(
        &mut self,
        object_type: ObjectType,
        props: BTreeMap<String, String>,
        at: DateTime<Utc>,
    ) -> u64 {
        let next = self.next_id.entry(object_type).or_insert(1);
        let id = object_type.id_base() + *next;
        *next += 1;
        let mut properties = props;
        properties.insert("hs_object_id".into(), id.to_string());
        properties.insert("createdate".into(), iso(at));
        properties.insert(object_type.last_modified_property().into(), iso(at));
        for name in properties.keys() {
            self.ensure_property(object_type, name);
        }
        let object = CrmObject {
            id,
            object_type,
            properties,
            created_at: at,
            updated_at: at,
            archived: false,
        };
        self.objects
            .entry(object_type)
            .or_default()
            .insert(id, object);
        id
    }

    /// Defines a custom string property when a value arrives for an unknown name.
    pub(crate) fn ensure_property(&mut self, object_type: ObjectType, name: &str) {
        let defs = self.properties.entry(object_type).or_default();
        if !defs.iter().any(|d| d.name == name) {
            defs.push(PropertyDef::custom_text(object_type, name));
        }
    }

    pub(crate) fn get(&self, object_type: ObjectType, id: u64) -> Option<&CrmObject> {
        self.objects.get(&object_type)?.get(&id)
    }

    pub(crate) fn get_mut(&mut self, object_type: ObjectType, id: u64) -> Option<&mut CrmObject> {
        self.objects.get_mut(&object_type)?.get_mut(&id)
    }

    /// Live (not archived) records of a type, by id.
    pub(crate) fn live(&self, object_type: ObjectType) -> impl Iterator<Item = &CrmObject> {
        self.objects
            .get(&object_type)
            .into_iter()
            .flat_map(|m| m.values())
            .filter(|o| !o.archived)
    }

    /// Sets one property; keeps the last-modified date (and, for deals, the
    /// stage probability) in step, as HubSpot does.
    pub(crate) fn set(
        &mut self,
        object_type: ObjectType,
        id: u64,
        name: &str,
        value: &str,
        at: DateTime<Utc>,
    ) -> bool {
        self.ensure_property(object_type, name);
        let Some(object) = self.get_mut(object_type, id).filter(|o| !o.archived) else {
            return false;
        };
        object
            .properties
            .insert(name.to_string(), value.to_string());
        object.updated_at = at;
        object
            .properties
            .insert(object_type.last_modified_property().into(), iso(at));
        if object_type == ObjectType::Deals
            && name == "dealstage"
            && let Some(p) = schema::stage_probability(value)
        {
            object
                .properties
                .insert("hs_deal_stage_probability".into(), format!("{p:?}"));
        }
        true
    }

    /// Links two records both ways; false when either is missing.
    pub(crate) fn associate(&mut self, a: (ObjectType, u64), b: (ObjectType, u64)) -> bool {
        if self.get(a.0, a.1).is_none() || self.get(b.0, b.1).is_none() {
            return false;
        }
        self.associations
            .entry(a)
            .or_default()
            .entry(b.0)
            .or_default()
            .insert(b.1);
        self.associations
            .entry(b)
            .or_default()
            .entry(a.0)
            .or_default()
            .insert(a.1);
        true
    }

    /// Ids of live records of `to` linked to `from`, ascending.
    pub(crate) fn associated(&self, from: (ObjectType, u64), to: ObjectType) -> Vec<u64> {
        self.associations
            .get(&from)
            .and_then(|m| m.get(&to))
            .into_iter()
            .flatten()
            .copied()
            .filter(|id| self.get(to, *id).is_some_and(|o| !o.archived))
            .collect()
    }
}
