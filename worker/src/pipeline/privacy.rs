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

/// Whether [`privacy`] may have something to do with `event`: an erasure
/// request, or a contact's event when the contact may have been erased.
pub fn concerns(w: &Worker, event: &HubSpotEvent, maybe_erased: bool) -> bool {
    erasure(w, event).is_some()
        || (maybe_erased && matches!(event.object_and_action(), Some(("contact", _))))
}

/// `Ok(None)`: nothing to do with privacy, go on. `maybe_erased` is false
/// when the message's lookup already showed the contact was not erased.
pub async fn privacy(
    rec: &EventRecord<'_>,
    maybe_erased: bool,
) -> Result<Option<EventResult>, Failure> {
    let (w, event, key) = (rec.w, rec.event, rec.key);
    let Some(("contact", _)) = event.object_and_action() else {
        return Ok(None);
    };
    let trigger = erasure(w, event);
    let stored = stored_event(event);
    let rec = rec.storing(&stored);
    if let Some(t) = trigger {
        let actor = format!("hubspot:{}", event.subscription_type);
        erase(&w.pool, &w.cipher, key.portal_id, key.object_id, t, &actor)
            .await
            .map_err(Failure::database)?;
        rec.outcome(EventStatus::Erased, t.as_str(), None).await?;
        return Ok(Some(EventResult::Skipped("privacy_erased")));
    }
    if maybe_erased
        && is_erased(&w.pool, key.portal_id, key.object_id)
            .await
            .map_err(Failure::database)?
    {
        rec.outcome(EventStatus::Skipped, "contact_erased", None)
            .await?;
        return Ok(Some(EventResult::Skipped("contact_erased")));
    }
    Ok(None)
}
