//! End-to-end tests of the connector (the sandbox is a crate of its own;
//! the quick start, benchmarks and fault suite are the `tools` crate).

pub mod e2e;
pub mod harness;
pub mod webdriver;
pub mod website;
