//! The events of one message, processed concurrently: a webhook batch
//! carries up to 100 events, and each waits on PostgreSQL and impact.com
//! (~50 ms per delivery), so one at a time would cap a message at ~20
//! conversions/s. Events of one object stay in order (a chain); chains run
//! at most `Worker::event_concurrency` at once. After a transient failure,
//! events not started yet are left for the message's retry.

use std::{
    collections::HashMap,
    sync::atomic::{AtomicBool, Ordering},
};

use chrono::{DateTime, Utc};
use domain::{events::HubSpotEvent, failure::Failure};
use futures::StreamExt;

use crate::{
    Worker,
    pipeline::{Batching, EventResult, fetch::prefetched::Prefetched, process_event},
};

/// Chains of event indexes: one per object (portal, object kind, id), in
/// message order.
pub fn chains(events: &[HubSpotEvent]) -> Vec<Vec<usize>> {
    let mut index: HashMap<(u64, &str, u64), usize> = HashMap::new();
    let mut out: Vec<Vec<usize>> = Vec::new();
    for (i, e) in events.iter().enumerate() {
        let kind = e.subscription_type.split('.').next().unwrap_or_default();
        let key = (e.portal_id.0, kind, e.object_id);
        let chain = *index.entry(key).or_insert_with(|| {
            out.push(Vec::new());
            out.len() - 1
        });
        out[chain].push(i);
    }
    out
}

/// Processes `events` (sharing the worker's record and delivery batches);
/// each finished event's result by index, and the first
/// transient failure if any (with it, some events may have no result).
pub async fn process_all(
    w: &Worker,
    events: &[HubSpotEvent],
    received_at: Option<DateTime<Utc>>,
    prefetched: &Prefetched,
) -> (Vec<(usize, EventResult)>, Option<(usize, Failure)>) {
    let stop = AtomicBool::new(false);
    let stop = &stop;
    let runs = futures::stream::iter(chains(events))
        .map(|chain| async move {
            let mut done = Vec::with_capacity(chain.len());
            for i in chain {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                // Boxed: this chain's future, moved into the stream's set,
                // stays small.
                let event = process_event(w, &events[i], received_at, prefetched, Batching::Shared);
                match Box::pin(event).await {
                    Ok(r) => done.push((i, r)),
                    Err(f) => {
                        stop.store(true, Ordering::Relaxed);
                        return (done, Some((i, f)));
                    }
                }
            }
            (done, None)
        })
        .buffer_unordered(w.event_concurrency)
        .collect::<Vec<_>>()
        .await;
    let mut results = Vec::with_capacity(events.len());
    let mut failure: Option<(usize, Failure)> = None;
    for (done, failed) in runs {
        results.extend(done);
        if let Some((i, f)) = failed
            && failure.as_ref().is_none_or(|(j, _)| i < *j)
        {
            failure = Some((i, f));
        }
    }
    results.sort_by_key(|(i, _)| *i);
    (results, failure)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(portal: u64, kind: &str, id: u64) -> HubSpotEvent {
        serde_json::from_value(serde_json::json!({
            "portalId": portal, "objectId": id, "occurredAt": 1, "subscriptionType": kind,
        }))
        .expect("an event")
    }

    #[test]
    fn events_of_one_object_share_a_chain_in_order() {
        let events = [
            event(1, "deal.creation", 7),
            event(1, "contact.creation", 7),
            event(1, "deal.propertyChange", 7),
            event(2, "deal.propertyChange", 7),
        ];
        assert_eq!(chains(&events), vec![vec![0, 2], vec![1], vec![3]]);
    }
}
