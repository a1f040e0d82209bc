//! The pipeline's privacy step, after deduplication: an erasure request is
//! carried out (and recorded `erased`); an event of an erased contact is
//! skipped (`contact_erased`) and stored without its value.

use domain::{events::HubSpotEvent, failure::Failure, status::EventStatus};

use crate::{
    Worker,
    pipeline::{record::EventRecord, result::EventResult},
    privacy::{Trigger, erase, is_erased, stored_event},
};

/// The erasure `event` asks for, if any.
fn erasure(w: &Worker, event: &HubSpotEvent) -> Option<Trigger> {
    match event.object_and_action()? {
        ("contact", "privacyDeletion") => Some(Trigger::PrivacyDeletion),
        ("contact", "deletion") if w.erase_on_deletion => Some(Trigger::Deletion),
        _ => None,
    }
}

/// What [`privacy`] has to do with an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Concern {
    /// Carry out the erasure the event requests.
    Erase(Trigger),
    /// A contact's event, when the contact may have been erased.
    MaybeErased,
}

/// What [`privacy`] has to do with `event`, if anything: an erasure
/// request, or a contact's event when the contact may have been erased
/// (`maybe_erased` is false when the message's lookup already showed it was
/// not).
pub fn concern(w: &Worker, event: &HubSpotEvent, maybe_erased: bool) -> Option<Concern> {
    if let Some(t) = erasure(w, event) {
        return Some(Concern::Erase(t));
    }
    (maybe_erased && matches!(event.object_and_action(), Some(("contact", _))))
        .then_some(Concern::MaybeErased)
}

/// Carries out `concern` ([`concern`]): `Ok(None)` when the event goes on.
pub async fn privacy(
    rec: &EventRecord<'_>,
    concern: Concern,
) -> Result<Option<EventResult>, Failure> {
    let (w, event, key) = (rec.w, rec.event, rec.key);
    let stored = stored_event(event);
    let rec = rec.storing(&stored);
    if let Concern::Erase(t) = concern {
        let actor = format!("hubspot:{}", event.subscription_type);
        erase(&w.pool, &w.cipher, key.portal_id, key.object_id, t, &actor)
            .await
            .map_err(Failure::database)?;
        rec.outcome(EventStatus::Erased, t.as_str(), None).await?;
        return Ok(Some(EventResult::Skipped("privacy_erased")));
    }
    if is_erased(&w.pool, key.portal_id, key.object_id)
        .await
        .map_err(Failure::database)?
    {
        rec.outcome(EventStatus::Skipped, "contact_erased", None)
            .await?;
        return Ok(Some(EventResult::Skipped("contact_erased")));
    }
    Ok(None)
}
