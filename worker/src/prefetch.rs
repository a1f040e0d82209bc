//! Batch reads: the objects of a message's firing events are read with one
//! `batch/read` call per portal and object type (up to 100 ids per call)
//! instead of one `GET` each — HubSpot's rate limit counts requests, and a
//! webhook batch carries up to 100 events.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use domain::{
    events::{HubSpotEvent, PortalId},
    failure::Failure,
    mapping::{self, Properties},
    object_type::ObjectType,
    portal::PortalStatus,
    triggers::{self, Decision},
};
use shared::db::events::EventKey;

use crate::{Worker, fetch::object_properties, tokens::hubspot_token};

/// Objects read ahead for one message.
#[derive(Debug, Default)]
pub struct Prefetched {
    objects: HashMap<(PortalId, ObjectType, u64), (BTreeSet<String>, Properties)>,
    /// A deal's ordered line items, read with these line-item properties.
    pub(crate) line_items: HashMap<(PortalId, u64), (BTreeSet<String>, Vec<Properties>)>,
    /// A deal's associated contact (primary, else lowest id).
    pub(crate) contacts: HashMap<(PortalId, u64), Option<u64>>,
    /// Events known not to be recorded yet (one query for the message).
    unseen: HashSet<EventKey>,
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

/// Reads ahead the objects of `events` that will fire, when at least two
/// share a portal and type. Best effort: anything that fails here is simply
/// read (and its failure classified) event by event later.
pub async fn prefetch(w: &Worker, events: &[HubSpotEvent]) -> Prefetched {
    let mut groups: BTreeMap<(PortalId, ObjectType), Group> = BTreeMap::new();
    for event in events {
        let Ok(Some(portal)) = w.portals.get(&w.pool, &w.cipher, event.portal_id).await else {
            continue;
        };
        let Some(config) = portal
            .config
            .as_ref()
            .filter(|_| portal.status == PortalStatus::Active)
        else {
            continue;
        };
        let Decision::Fire(ty, firing) = triggers::evaluate(&config.triggers, event) else {
            continue;
        };
        let rows = config
            .mappings
            .get(&ty)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let group = groups.entry((event.portal_id, ty)).or_default();
        group.ids.insert(event.object_id);
        group
            .properties
            .extend(object_properties(ty, rows, &firing));
        let needs = mapping::needs(rows);
        group
            .line_item_properties
            .extend(needs.line_item_properties);
        group.associated_contact |= needs.associated_contact;
    }
    let mut out = Prefetched::none();
    let keys: Vec<EventKey> = events.iter().map(EventKey::of).collect();
    // Contacts this message asks to erase: their events take the slow path
    // (the pipeline's erasure check), like those of contacts erased before.
    let erasing: HashSet<(PortalId, u64)> = events
        .iter()
        .filter(|e| {
            matches!(
                e.object_and_action(),
                Some(("contact", "privacyDeletion" | "deletion"))
            )
        })
        .map(|e| (e.portal_id, e.object_id))
        .collect();
    if let Ok(seen) = shared::db::events::seen_many(&w.pool, &keys).await {
        out.unseen = keys
            .into_iter()
            .zip(seen)
            .zip(events)
            .filter_map(|((k, seen), e)| {
                let erasing = e.subscription_type.starts_with("contact.")
                    && erasing.contains(&(e.portal_id, e.object_id));
                (!seen && !erasing).then_some(k)
            })
            .collect();
    }
    for ((portal_id, ty), group) in groups {
        let Group {
            ids,
            properties: props,
            ..
        } = &group;
        if ids.len() < 2 {
            continue;
        }
        let Ok(Some(portal)) = w.portals.get(&w.pool, &w.cipher, portal_id).await else {
            continue;
        };
        let Ok(token) = hubspot_token(w, portal_id, &portal).await else {
            continue;
        };
        let ids: Vec<u64> = ids.iter().copied().collect();
        let wanted: Vec<String> = props.iter().cloned().collect();
        // Retried in process like a single read (a 429 waits for the budget).
        let read = w
            .retry
            .run("hubspot_batch_read", || async {
                w.hubspot
                    .batch_read(&token, ty.as_str(), &ids, &wanted)
                    .await
                    .map_err(|e| e.failure())
            })
            .await;
        match read {
            Ok(objects) => {
                metrics::counter!("worker_prefetched_objects_total")
                    .increment(objects.len() as u64);
                for o in objects {
                    if let Ok(id) = o.id.parse::<u64>() {
                        out.objects
                            .insert((portal_id, ty, id), (props.clone(), o.properties));
                    }
                }
            }
            // Still rate limited or unavailable: reading the objects one by
            // one would spend a call each on the same limit. The message is
            // retried later instead.
            Err(f) if f.is_transient() => {
                tracing::debug!(
                    reason = f.reason,
                    "batch read failed; the message will be retried"
                );
                out.failure = Some(f);
                return out;
            }
            Err(f) => tracing::debug!(reason = f.reason, "batch read failed; reading one by one"),
        }
        if ty == ObjectType::Deals {
            crate::prefetch_deals::deal_extras(w, &token, portal_id, &ids, &group, &mut out).await;
            if out.failure.is_some() {
                return out;
            }
        }
    }
    out
}

/// What the firing events of one portal and object type need.
#[derive(Debug, Default)]
pub(crate) struct Group {
    /// Object ids.
    pub(crate) ids: BTreeSet<u64>,
    /// Object properties.
    pub(crate) properties: BTreeSet<String>,
    /// Line-item properties (deals; empty: none needed).
    pub(crate) line_item_properties: BTreeSet<String>,
    /// Whether the deals' associated contact is needed.
    pub(crate) associated_contact: bool,
}
