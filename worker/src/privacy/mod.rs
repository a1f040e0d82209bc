//! Privacy: erasing what we hold about a contact. The erasure itself is
//! pure SQL and lives in `shared::db::privacy` (the console calls it too);
//! this module is the pipeline's privacy step and re-exports the rest.

mod pipeline;

pub use pipeline::{on_event, stored_event};
pub use shared::db::privacy::{ERASED, Erased, Trigger, erase, is_erased, scrub};
