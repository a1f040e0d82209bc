//! Discarding a dead letter, and parsing operator filters: shared with the
//! console's admin API (`shared::db::dead_letter_ops`).

pub use shared::db::dead_letter_ops::{BadTime, Discarded, discard, filter, parse_time};
