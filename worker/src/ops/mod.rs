//! Operations commands: webhook subscriptions the app needs, pruning old
//! rows, re-encrypting stored secrets under a new key, listing conversions
//! with their outcome, erasing a contact's data.

pub mod cli;
pub mod keys;
pub mod queue_depth;
pub mod records;
pub mod retention;
pub mod subscriptions;
pub mod subscriptions_adjust;
