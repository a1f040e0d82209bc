//! The fetch step: gathers what the mappings need from HubSpot: the object
//! (only the properties mapped), a deal's line items and associated
//! contact, and the deal stage's label. The assembly itself is the
//! website preview's (`shared::hubspot::assemble`); the worker adds its
//! batch prefetch, its caches (tokens, stage labels, company currencies),
//! the in-process retry and the refresh of a refused OAuth token.

pub mod currency;
pub mod prefetch;
mod prefetch_deals;
pub mod prefetched;
pub mod stages;
pub mod token_cache;
pub mod tokens;

use domain::{
    events::{HubSpotEvent, PortalId},
    failure::{Failure, FailureReason},
    mapping::{self, Context, FieldMapping},
    object_type::ObjectType,
    portal::HubSpotAuthKind,
    triggers::Firing,
};
use secrecy::SecretString;
use shared::{
    db::portals::StoredPortal,
    hubspot::assemble::{Known, ObjectRequest, assemble, trigger_of},
};

use crate::Worker;
use prefetched::Prefetched;
use tokens::{hubspot_token, token_rejected};

/// What to fetch for one object.
pub struct FetchRequest<'a> {
    /// The portal.
    pub portal: PortalId,
    /// Object type.
    pub object_type: ObjectType,
    /// The triggering event.
    pub event: &'a HubSpotEvent,
    /// What fired.
    pub firing: &'a Firing,
    /// The mappings of the object type.
    pub mappings: &'a [FieldMapping],
    /// The portal's Program ID.
    pub program_id: &'a str,
}

/// [`fetch`] with the portal's token, short blips retried in process. When
/// HubSpot refuses an OAuth token we held for valid, it is refreshed and
/// the object read again at once (a private-app token cannot be refreshed:
/// the failure stands).
pub async fn fetch_object(
    w: &Worker,
    stored: &StoredPortal,
    r: &FetchRequest<'_>,
    prefetched: &Prefetched,
) -> Result<Context, Failure> {
    w.retry
        .run("hubspot_fetch", || async move {
            let token = hubspot_token(w, r.portal, stored).await?;
            match fetch(w, r, &token, prefetched).await {
                Err(f)
                    if f.reason == FailureReason::HubspotAuth
                        && stored.auth_kind == HubSpotAuthKind::Oauth =>
                {
                    token_rejected(w, r.portal, stored, &token).await?;
                    let token = hubspot_token(w, r.portal, stored).await?;
                    fetch(w, r, &token, prefetched).await
                }
                other => other,
            }
        })
        .await
}

/// Builds the mapping context of one event with the assembly the website's
/// preview uses (`shared::hubspot::assemble`); what `prefetched` holds (a
/// batch read of the message's objects) is not read again, and stage labels
/// and company currencies come from the worker's caches.
pub async fn fetch(
    w: &Worker,
    r: &FetchRequest<'_>,
    token: &SecretString,
    prefetched: &Prefetched,
) -> Result<Context, Failure> {
    let request = ObjectRequest {
        token,
        object_type: r.object_type,
        object_id: r.event.object_id,
        mappings: r.mappings,
        needs: mapping::needs(r.mappings),
        trigger: trigger_of(r.firing),
        program_id: r.program_id,
        occurred_at_ms: r.event.occurred_at,
    };
    let known = known(r, &request, prefetched);
    let (stages, currency) = (w.stages.of(r.portal), w.currencies.of(r.portal));
    assemble(&w.hubspot, &request, known, &stages, &currency)
        .await
        .map_err(|e| e.failure())
}

/// What the message's batch reads hold for the request.
fn known(r: &FetchRequest<'_>, request: &ObjectRequest<'_>, prefetched: &Prefetched) -> Known {
    let id = r.event.object_id;
    let object = prefetched
        .get(r.portal, r.object_type, id, &request.properties())
        .cloned();
    if r.object_type != ObjectType::Deals {
        return Known {
            object,
            ..Known::default()
        };
    }
    Known {
        object,
        line_items: prefetched
            .line_items(r.portal, id, &request.needs.line_item_properties)
            .map(<[_]>::to_vec),
        contact: prefetched.contact(r.portal, id),
    }
}
