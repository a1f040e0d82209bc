//! The `worker` executable's operator commands (`portal`, `dlq`, `adjustments`,
//! `subscriptions`, `prune`, `keys`) against a fresh database.
//!
//! One test binary: each module below was a test file of its own.

mod adjustments;
mod dlq;
mod ops;
mod portal;
