//! What was read ahead for one message (batch reads), for its events.

use std::collections::{BTreeSet, HashMap, HashSet};

use domain::{events::PortalId, failure::Failure, mapping::Properties, object_type::ObjectType};
use shared::db::events::EventKey;

/// Objects read ahead for one message.
#[derive(Debug, Default)]
pub struct Prefetched {
    pub(super) objects: HashMap<(PortalId, ObjectType, u64), (BTreeSet<String>, Properties)>,
    /// A deal's ordered line items, read with these line-item properties.
    pub(super) line_items: HashMap<(PortalId, u64), (BTreeSet<String>, Vec<Properties>)>,
    /// A deal's associated contact (primary, else lowest id).
    pub(super) contacts: HashMap<(PortalId, u64), Option<u64>>,
    /// Events known not to be recorded yet (one query for the message).
    pub(super) unseen: HashSet<EventKey>,
    /// A batch read failed transiently (after the in-process retries): the
    /// message is retried rather than read object by object.
    pub failure: Option<Failure>,
}

impl Prefetched {
    /// Nothing read ahead.
    pub fn none() -> Self {
        Self::default()
    }

    /// The object's properties, if it was read with at least `wanted`.
    pub fn get(
        &self,
        portal: PortalId,
        ty: ObjectType,
        id: u64,
        wanted: &[String],
    ) -> Option<&Properties> {
        let (read, props) = self.objects.get(&(portal, ty, id))?;
        wanted.iter().all(|p| read.contains(p)).then_some(props)
    }

    /// The deal's line items, if they were read with at least `wanted`.
    pub fn line_items(
        &self,
        portal: PortalId,
        deal: u64,
        wanted: &BTreeSet<String>,
    ) -> Option<&[Properties]> {
        let (read, items) = self.line_items.get(&(portal, deal))?;
        wanted.is_subset(read).then_some(items.as_slice())
    }

    /// Whether the event was not recorded when the message started (a
    /// hint: a concurrent duplicate is still caught by the unique key).
    pub fn known_unseen(&self, key: &EventKey) -> bool {
        self.unseen.contains(key)
    }

    /// The deal's associated contact, if it was read ahead.
    pub fn contact(&self, portal: PortalId, deal: u64) -> Option<Option<u64>> {
        self.contacts.get(&(portal, deal)).copied()
    }
}

/// What the firing events of one portal and object type need.
#[derive(Debug, Default)]
pub(super) struct Group {
    /// Object ids.
    pub(super) ids: BTreeSet<u64>,
    /// Object properties.
    pub(super) properties: BTreeSet<String>,
    /// Line-item properties (deals; empty: none needed).
    pub(super) line_item_properties: BTreeSet<String>,
    /// Whether the deals' associated contact is needed.
    pub(super) associated_contact: bool,
}
