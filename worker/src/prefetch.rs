//! Batch reads: the objects of a message's firing events are read with one
//! `batch/read` call per portal and object type (up to 100 ids per call)
//! instead of one `GET` each — HubSpot's rate limit counts requests, and a
//! webhook batch carries up to 100 events.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use shared::{
    events::{HubSpotEvent, PortalId},
    mapping::Properties,
    object_type::ObjectType,
    portal::PortalStatus,
    triggers::{self, Decision},
};

use crate::{Worker, fetch::object_properties, tokens::hubspot_token};

/// Objects read ahead for one message.
#[derive(Debug, Default)]
pub struct Prefetched {
    objects: HashMap<(PortalId, ObjectType, u64), (BTreeSet<String>, Properties)>,
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
}

/// Reads ahead the objects of `events` that will fire, when at least two
/// share a portal and type. Best effort: anything that fails here is simply
/// read (and its failure classified) event by event later.
pub async fn prefetch(w: &Worker, events: &[HubSpotEvent]) -> Prefetched {
    let mut groups: BTreeMap<(PortalId, ObjectType), (BTreeSet<u64>, BTreeSet<String>)> =
        BTreeMap::new();
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
        group.0.insert(event.object_id);
        group.1.extend(object_properties(ty, rows, &firing));
    }
    let mut out = Prefetched::none();
    for ((portal_id, ty), (ids, props)) in groups {
        if ids.len() < 2 {
            continue;
        }
        let Ok(Some(portal)) = w.portals.get(&w.pool, &w.cipher, portal_id).await else {
            continue;
        };
        let Ok(token) = hubspot_token(w, portal_id, &portal).await else {
            continue;
        };
        let ids: Vec<u64> = ids.into_iter().collect();
        let wanted: Vec<String> = props.iter().cloned().collect();
        match w
            .hubspot
            .batch_read(&token, ty.as_str(), &ids, &wanted)
            .await
        {
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
            Err(e) => tracing::debug!(error = %e, "batch read failed; reading one by one"),
        }
    }
    out
}
