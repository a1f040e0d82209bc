//! Operations commands: webhook subscriptions the app needs, pruning old
//! rows, and re-encrypting stored secrets under a new key.

pub mod cli;
pub mod keys;
pub mod queue_depth;
pub mod retention;
pub mod subscriptions;
