//! Reads ahead what a batch of deals needs besides the deals: their line
//! items (one batch association read for up to 1,000 deals, then batch
//! reads of 100 line items) and their associated contact (one batch
//! association read), instead of two or three calls per deal.
//!
//! The reads are retried in process like the deals' own batch read; a read
//! still failing transiently (rate limited, HubSpot unavailable) fails the
//! message, which is retried later, rather than falling back to two or
//! three calls per deal on the same exhausted limit.

use std::collections::HashMap;

use domain::{events::PortalId, failure::Failure, object_type::ObjectType};
use secrecy::SecretString;
use shared::hubspot::{
    CrmObject, HubSpotError,
    assemble::{line_item_properties, order_line_items, primary_contact},
};

use super::prefetched::{Group, Prefetched};
use crate::Worker;

/// Fills `out` with the line items and contacts of `deals`. A failure
/// (after the in-process retries) is the caller's to judge: a permanent one
/// leaves the deals to be read one by one, a transient one fails the message.
pub(crate) async fn deal_extras(
    w: &Worker,
    token: &SecretString,
    portal: PortalId,
    deals: &[u64],
    group: &Group,
    out: &mut Prefetched,
) -> Result<(), Failure> {
    if !group.line_item_properties.is_empty() {
        let assoc = retried(w, "hubspot_batch_associations", || {
            w.hubspot
                .batch_associations(token, ObjectType::Deals, "line_items", deals)
        })
        .await?;
        let mut item_ids: Vec<u64> = assoc
            .values()
            .flat_map(|a| a.iter().map(|x| x.to_object_id))
            .collect();
        item_ids.sort_unstable();
        item_ids.dedup();
        let props = line_item_properties(&group.line_item_properties);
        let items = if item_ids.is_empty() {
            vec![]
        } else {
            retried(w, "hubspot_batch_read", || {
                w.hubspot.batch_read(token, "line_items", &item_ids, &props)
            })
            .await?
        };
        let by_id: HashMap<u64, CrmObject> = items
            .into_iter()
            .filter_map(|o| Some((o.id.parse::<u64>().ok()?, o)))
            .collect();
        for (deal, links) in assoc {
            let mine: Vec<_> = links
                .iter()
                .filter_map(|l| by_id.get(&l.to_object_id).cloned())
                .collect();
            if mine.len() < links.len() {
                // An item vanished between the two reads: let the deal read
                // its own.
                continue;
            }
            out.line_items.insert(
                (portal, deal),
                (group.line_item_properties.clone(), order_line_items(mine)),
            );
        }
    }
    if group.associated_contact {
        let assoc = retried(w, "hubspot_batch_associations", || {
            w.hubspot
                .batch_associations(token, ObjectType::Deals, "contacts", deals)
        })
        .await?;
        for (deal, links) in assoc {
            out.contacts.insert((portal, deal), primary_contact(&links));
        }
    }
    Ok(())
}

/// One HubSpot read under the worker's in-process retry policy (a 429 waits
/// for the rate budget).
async fn retried<T, F, Fut>(w: &Worker, what: &'static str, op: F) -> Result<T, Failure>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<T, HubSpotError>>,
{
    w.retry
        .run(what, || async { op().await.map_err(|e| e.failure()) })
        .await
}
