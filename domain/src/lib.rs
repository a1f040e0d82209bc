//! The connector's pure domain, free of I/O: what a HubSpot event is and how
//! its signature is checked, when a trigger fires, how a mapping turns a
//! HubSpot object into impact.com parameters, what a portal document says,
//! which changes reverse or modify a delivered conversion, what an erasure
//! scrubs, what impact.com's verdict on a submission means, the retry
//! ladder, the stored states, and the webhook subscriptions the portals
//! need.
//!
//! Every function here is a plain function of its inputs, testable without
//! a runtime, a database or a network; the processes (`ingest`, `console`,
//! `worker`) wire I/O around them through `shared`.

pub mod adjustments;
pub mod events;
pub mod failure;
pub mod mapping;
pub mod merges;
pub mod object_type;
pub mod outcome;
pub mod portal;
pub mod privacy;
pub mod retry;
pub mod signature;
pub mod status;
pub mod subscriptions;
pub mod triggers;

#[cfg(test)]
mod test_support;
