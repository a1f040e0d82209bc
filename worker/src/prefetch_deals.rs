//! Reads ahead what a batch of deals needs besides the deals: their line
//! items (one batch association read for up to 1,000 deals, then batch
//! reads of 100 line items) and their associated contact (one batch
//! association read), instead of two or three calls per deal.

use secrecy::SecretString;
use shared::{events::PortalId, object_type::ObjectType};

use crate::{
    Worker,
    fetch::{line_item_properties, order_line_items, primary_contact},
    prefetch::{Group, Prefetched},
};

/// Fills `out` with the line items and contacts of `deals`. Best effort:
/// whatever fails here is read deal by deal later.
pub(crate) async fn deal_extras(
    w: &Worker,
    token: &SecretString,
    portal: PortalId,
    deals: &[u64],
    group: &Group,
    out: &mut Prefetched,
) {
    if !group.line_item_properties.is_empty() {
        match w
            .hubspot
            .batch_associations(token, ObjectType::Deals, "line_items", deals)
            .await
        {
            Ok(assoc) => {
                let mut item_ids: Vec<u64> = assoc
                    .values()
                    .flat_map(|a| a.iter().map(|x| x.to_object_id))
                    .collect();
                item_ids.sort_unstable();
                item_ids.dedup();
                let props = line_item_properties(&group.line_item_properties);
                let items = if item_ids.is_empty() {
                    Ok(vec![])
                } else {
                    w.hubspot
                        .batch_read(token, "line_items", &item_ids, &props)
                        .await
                };
                match items {
                    Ok(items) => {
                        let by_id: std::collections::HashMap<u64, shared::hubspot::CrmObject> =
                            items
                                .into_iter()
                                .filter_map(|o| Some((o.id.parse::<u64>().ok()?, o)))
                                .collect();
                        for (deal, links) in assoc {
                            let mine: Vec<_> = links
                                .iter()
                                .filter_map(|l| by_id.get(&l.to_object_id).cloned())
                                .collect();
                            if mine.len() < links.len() {
                                // An item vanished between the two reads: let
                                // the deal read its own.
                                continue;
                            }
                            out.line_items.insert(
                                (portal, deal),
                                (group.line_item_properties.clone(), order_line_items(mine)),
                            );
                        }
                    }
                    Err(e) => tracing::debug!(error = %e, "line item batch read failed"),
                }
            }
            Err(e) => tracing::debug!(error = %e, "batch association read failed"),
        }
    }
    if group.associated_contact {
        match w
            .hubspot
            .batch_associations(token, ObjectType::Deals, "contacts", deals)
            .await
        {
            Ok(assoc) => {
                for (deal, links) in assoc {
                    out.contacts.insert((portal, deal), primary_contact(&links));
                }
            }
            Err(e) => tracing::debug!(error = %e, "batch association read failed"),
        }
    }
}
