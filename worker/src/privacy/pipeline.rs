//! The pipeline's privacy step.

use super::{ERASED, Trigger, erase, is_erased};

/// The event as stored for an erased contact: without the changed value
/// and without fields we do not know (they may carry anything).
pub fn stored_event(event: &domain::events::HubSpotEvent) -> domain::events::HubSpotEvent {
    let mut e = event.clone();
    if e.property_value.is_some() {
        e.property_value = Some(ERASED.into());
    }
    e.extra.clear();
    e
}

/// The pipeline's privacy step, after deduplication: an erasure request is
/// carried out (and recorded `erased`); an event of an erased contact is
/// skipped (`contact_erased`) and stored without its value. `Ok(None)`:
/// nothing to do with privacy, go on. `maybe_erased` is false when the
/// message's lookup already showed the contact was not erased.
pub async fn on_event(
    w: &crate::Worker,
    event: &domain::events::HubSpotEvent,
    key: &shared::db::events::EventKey,
    received_at: Option<chrono::DateTime<chrono::Utc>>,
    maybe_erased: bool,
) -> Result<Option<crate::EventResult>, domain::failure::Failure> {
    let Some(("contact", action)) = event.object_and_action() else {
        return Ok(None);
    };
    let trigger = match action {
        "privacyDeletion" => Some(Trigger::PrivacyDeletion),
        "deletion" if w.erase_on_deletion => Some(Trigger::Deletion),
        _ => None,
    };
    let stored = stored_event(event);
    let record = |status: &'static str, reason: &'static str| {
        let stored = &stored;
        async move {
            crate::record_batch::outcome(w, key, stored, received_at, (status, reason, None))
                .await
                .map_err(|e| domain::failure::Failure::transient("database_unavailable", e))
        }
    };
    if let Some(t) = trigger {
        erase(
            &w.pool,
            &w.cipher,
            key.portal_id,
            key.object_id,
            t,
            &format!("hubspot:{}", event.subscription_type),
        )
        .await
        .map_err(domain::failure::Failure::database)?;
        record("erased", t.as_str()).await?;
        return Ok(Some(crate::EventResult::Skipped("privacy_erased")));
    }
    if maybe_erased
        && is_erased(&w.pool, key.portal_id, key.object_id)
            .await
            .map_err(domain::failure::Failure::database)?
    {
        record("skipped", "contact_erased").await?;
        return Ok(Some(crate::EventResult::Skipped("contact_erased")));
    }
    Ok(None)
}
