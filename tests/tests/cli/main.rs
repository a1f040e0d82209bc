//! The `worker` executable's operator commands (`portal`, `dlq`, `adjustments`,
//! `subscriptions`, `prune`, `keys`) against a fresh database (and the
//! sandbox's fake HubSpot for `subscriptions --apply`).
//!
//! One test binary: each module below was a test file of its own.

#[allow(dead_code, unused_imports)] // Each binary uses a part of the harness.
#[path = "../../support/mod.rs"]
mod support;

mod adjustments;
mod dlq;
mod ops;
mod portal;
mod subscriptions;
