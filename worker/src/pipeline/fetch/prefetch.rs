//! Batch reads: the objects of a message's firing events are read with one
//! `batch/read` call per portal and object type (up to 100 ids per call)
//! instead of one `GET` each — HubSpot's rate limit counts requests, and a
//! webhook batch carries up to 100 events.

use std::collections::{BTreeMap, HashSet};

use domain::{
    events::{HubSpotEvent, PortalId},
    failure::Failure,
    mapping,
    object_type::ObjectType,
    portal::PortalStatus,
    triggers::{self, Decision},
};
use shared::{
    db::events::EventKey,
    hubspot::assemble::{firing_property, properties_of},
};

use super::{
    prefetch_deals::deal_extras,
    prefetched::{Group, Prefetched},
    tokens::hubspot_token,
};
use crate::Worker;

/// Reads ahead the objects of `events` that will fire, when at least two
/// share a portal and type. Best effort: anything that fails here is simply
/// read (and its failure classified) event by event later.
pub async fn prefetch(w: &Worker, events: &[HubSpotEvent]) -> Prefetched {
    let groups = groups(w, events).await;
    let mut out = Prefetched::none();
    out.unseen = unseen(w, events).await;
    for ((portal_id, ty), group) in groups {
        if group.ids.len() < 2 {
            continue;
        }
        read_group(w, portal_id, ty, &group, &mut out).await;
        if out.failure.is_some() {
            return out;
        }
    }
    out
}

/// What the firing events of each portal and object type need.
async fn groups(w: &Worker, events: &[HubSpotEvent]) -> BTreeMap<(PortalId, ObjectType), Group> {
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
        // What the mappings read, once per portal and object type (the
        // same for every event of the group); per event only its firing
        // property.
        let group = groups.entry((event.portal_id, ty)).or_insert_with(|| {
            let needs = mapping::needs(rows);
            Group {
                properties: properties_of(ty, &needs, None).into_iter().collect(),
                line_item_properties: needs.line_item_properties,
                associated_contact: needs.associated_contact,
                ..Group::default()
            }
        });
        group.ids.insert(event.object_id);
        if let Some(p) = firing_property(&firing)
            && !group.properties.contains(p)
        {
            group.properties.insert(p.to_owned());
        }
    }
    groups
}

/// The events not recorded yet (one query for the message). Events of
/// contacts this message asks to erase are left out: they take the slow
/// path (the pipeline's erasure check), like those of contacts erased before.
async fn unseen(w: &Worker, events: &[HubSpotEvent]) -> HashSet<EventKey> {
    let keys: Vec<EventKey> = events.iter().map(EventKey::of).collect();
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
    let Ok(seen) = shared::db::events::seen_many(&w.pool, &keys).await else {
        return HashSet::new();
    };
    keys.into_iter()
        .zip(seen)
        .zip(events)
        .filter_map(|((k, seen), e)| {
            let erasing = e.subscription_type.starts_with("contact.")
                && erasing.contains(&(e.portal_id, e.object_id));
            (!seen && !erasing).then_some(k)
        })
        .collect()
}

/// One batch read of a group's objects (and a deal's extras). A transient
/// failure is recorded in `out.failure`: the message is retried.
async fn read_group(
    w: &Worker,
    portal_id: PortalId,
    ty: ObjectType,
    group: &Group,
    out: &mut Prefetched,
) {
    let Ok(Some(portal)) = w.portals.get(&w.pool, &w.cipher, portal_id).await else {
        return;
    };
    let Ok(token) = hubspot_token(w, portal_id, &portal).await else {
        return;
    };
    let ids: Vec<u64> = group.ids.iter().copied().collect();
    let wanted: Vec<String> = group.properties.iter().cloned().collect();
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
            metrics::counter!("worker_prefetched_objects_total").increment(objects.len() as u64);
            for o in objects {
                if let Ok(id) = o.id.parse::<u64>() {
                    let read = (group.properties.clone(), o.properties);
                    out.objects.insert((portal_id, ty, id), read);
                }
            }
        }
        Err(f) => {
            if retry_message(f, "batch read failed", "reading one by one", out) {
                return;
            }
        }
    }
    if ty == ObjectType::Deals
        && let Err(f) = deal_extras(w, &token, portal_id, &ids, group, out).await
    {
        retry_message(f, "deal batch read failed", "reading deal by deal", out);
    }
}

/// Judges a batch read's failure: still rate limited or unavailable (after
/// the in-process retries), reading the objects one by one would spend a
/// call each on the same limit, so the message is retried later instead
/// (`out.failure`, `true`); a permanent failure leaves them to be read one
/// by one (`false`).
fn retry_message(f: Failure, what: &str, fallback: &str, out: &mut Prefetched) -> bool {
    if f.is_transient() {
        tracing::debug!(
            reason = f.reason.as_str(),
            "{what}; the message will be retried"
        );
        out.failure = Some(f);
        true
    } else {
        tracing::debug!(reason = f.reason.as_str(), "{what}; {fallback}");
        false
    }
}
