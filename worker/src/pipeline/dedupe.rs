//! Deduplication: an event recorded before is not processed again, except
//! to resume the delivery of the conversion it recorded.

use domain::{events::HubSpotEvent, failure::Failure, status::DeliveryStatus};
use shared::db::{self, events::EventKey};

use crate::{
    Worker,
    pipeline::{
        batching::Batching,
        dead_letter,
        deliver::{Claim, deliver},
        result::EventResult,
    },
};

/// `Some` when the event was recorded before: a duplicate, or (when its
/// conversion is still `pending`: a crash, or a transient failure) the
/// resumed delivery of the recorded payload. Not called for an event the
/// message's one query showed was not recorded.
pub async fn dedupe(
    w: &Worker,
    batching: Batching,
    event: &HubSpotEvent,
    key: &EventKey,
) -> Result<Option<EventResult>, Failure> {
    let seen = db::events::lookup(&w.pool, key)
        .await
        .map_err(Failure::database)?;
    let Some(seen) = seen else {
        return Ok(None);
    };
    match seen.conversion {
        Some((id, DeliveryStatus::Pending)) => {
            metrics::counter!("worker_conversions_resumed_total").increment(1);
            let claim = Claim {
                id,
                adopted: None,
                created_with: None,
            };
            let result = deliver(w, batching, event.portal_id, claim).await;
            dead_letter::refused(w, event, None, &result, None, id).await?;
            result.map(Some)
        }
        _ => Ok(Some(EventResult::Duplicate)),
    }
}
