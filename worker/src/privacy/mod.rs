//! Privacy: erasing what we hold about a contact. The erasure itself is
//! pure SQL and lives in `shared::db::privacy` (the console calls it too);
//! the pipeline's privacy step is `crate::pipeline::privacy`. This module
//! re-exports the rest.

pub use domain::privacy as scrub;
pub use shared::db::privacy::{ERASED, Erased, Trigger, erase, is_erased};

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
