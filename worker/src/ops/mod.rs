//! Operator features behind the commands (`crate::cli`): webhook
//! subscriptions the app needs, pruning old rows, re-encrypting stored
//! secrets under a new key.

pub mod keys;
pub mod retention;
pub mod subscriptions;
