//! End-to-end tests, the sandbox and benchmarks of the connector.

pub mod bench;
pub mod harness;
pub mod sandbox;
