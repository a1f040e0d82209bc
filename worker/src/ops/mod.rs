//! Operator features behind the commands (`crate::cli`): webhook
//! subscriptions the app needs and their application to the HubSpot app,
//! pruning old rows, re-encrypting stored secrets under a new key.

pub mod keys;
pub mod retention;
pub mod subscriptions;
pub mod webhooks_app;
