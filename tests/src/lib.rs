//! End-to-end tests, the sandbox and benchmarks of the connector.

pub mod bench;
pub mod e2e;
pub mod faults;
pub mod harness;
pub mod webdriver;
pub mod website;
