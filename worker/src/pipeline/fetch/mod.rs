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
    hubspot::assemble::{
        Known, ObjectRequest, assemble, object_context, properties_of, trigger_of,
    },
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

/// The context of an object that is not a deal, when the message's batch
/// read holds it with every property the request reads and no company
/// currency is needed: nothing to ask HubSpot, so no token, no retry and no
/// assembly (whose future alone is ~15 KB) — most events of an import.
pub fn from_prefetched(r: &FetchRequest<'_>, prefetched: &Prefetched) -> Option<Context> {
    if r.object_type == ObjectType::Deals {
        return None;
    }
    let needs = mapping::needs(r.mappings);
    if needs.currency {
        return None;
    }
    let trigger = trigger_of(r.firing);
    let wanted = properties_of(
        r.object_type,
        &needs,
        trigger.as_ref().map(|(p, _)| p.as_str()),
    );
    let id = r.event.object_id;
    let props = prefetched.get(r.portal, r.object_type, id, &wanted)?;
    let (program, at) = (r.program_id, r.event.occurred_at);
    Some(object_context(props.clone(), id, trigger, program, at))
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use domain::mapping::{Properties, Source, Target};

    use super::*;

    fn event(kind: &str) -> HubSpotEvent {
        serde_json::from_value(serde_json::json!({
            "portalId": 7, "objectId": 42, "occurredAt": 1_700_000_000_000_u64,
            "subscriptionType": kind, "propertyName": "lifecyclestage", "propertyValue": "lead",
        }))
        .expect("an event")
    }

    fn mapping(property: &str, target: &str) -> FieldMapping {
        FieldMapping {
            source: Source::Property(property.into()),
            target: Target::Field(target.into()),
            value_map: None,
        }
    }

    /// A batch read of contact 42 with `read`, holding `values`.
    fn read_ahead(read: &[&str], values: &[(&str, &str)]) -> Prefetched {
        let mut p = Prefetched::none();
        let read: BTreeSet<String> = read.iter().map(|s| (*s).to_owned()).collect();
        let props: Properties = values
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Some((*v).to_owned())))
            .collect();
        p.objects
            .insert((PortalId(7), ObjectType::Contacts, 42), (read, props));
        p
    }

    #[test]
    fn a_contact_read_ahead_with_every_property_needs_no_fetch() {
        let event = event("contact.propertyChange");
        let firing = Firing::PropertyChange {
            property: "lifecyclestage".into(),
            value: Some("lead".into()),
        };
        let mappings = [mapping("email", "CustomerEmail")];
        let r = FetchRequest {
            portal: PortalId(7),
            object_type: ObjectType::Contacts,
            event: &event,
            firing: &firing,
            mappings: &mappings,
            program_id: "1234",
        };
        let all = [
            "email",
            "hs_object_id",
            "lifecyclestage",
            "hs_merged_object_ids",
        ];
        let read = read_ahead(&all, &[("email", "a@example.com")]);
        let ctx = from_prefetched(&r, &read).expect("built from the batch read");
        assert_eq!(ctx.property("email"), Some("a@example.com"));
        // The id is known even when HubSpot leaves the property out.
        assert_eq!(ctx.property("hs_object_id"), Some("42"));
        assert_eq!(
            ctx.trigger,
            Some(("lifecyclestage".into(), Some("lead".into())))
        );
        assert_eq!(
            (ctx.program_id.as_str(), ctx.occurred_at_ms),
            ("1234", 1_700_000_000_000)
        );

        // A property the batch read did not ask for: HubSpot is asked.
        let partial = read_ahead(&all[..2], &[("email", "a@example.com")]);
        assert!(from_prefetched(&r, &partial).is_none());
        // Not read ahead at all.
        assert!(from_prefetched(&r, &Prefetched::none()).is_none());
        // An amount without a currency needs the company's currency.
        let money = [mapping("amount", "OrderSubTotalPostDiscount")];
        let r = FetchRequest {
            mappings: &money,
            ..r
        };
        assert!(from_prefetched(&r, &read).is_none());
    }

    #[test]
    fn a_deal_is_always_assembled() {
        let event = event("deal.creation");
        let mappings = [mapping("dealname", "OrderId")];
        let r = FetchRequest {
            portal: PortalId(7),
            object_type: ObjectType::Deals,
            event: &event,
            firing: &Firing::Creation,
            mappings: &mappings,
            program_id: "1234",
        };
        let mut read = Prefetched::none();
        let all: BTreeSet<String> = [
            "dealname",
            "hs_object_id",
            "deal_currency_code",
            "hs_merged_object_ids",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        read.objects.insert(
            (PortalId(7), ObjectType::Deals, 42),
            (all, Properties::new()),
        );
        assert!(from_prefetched(&r, &read).is_none());
    }
}
