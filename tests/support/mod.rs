//! The harness every test binary shares: isolated settings and queue
//! prefixes, fresh databases, ingest and workers in process, the sandbox,
//! the website and a headless browser, the `worker` executable. Each test
//! binary includes it as its `support` module (an integration-test
//! convention, so that the services are dev-dependencies only).

pub mod a11y;
pub mod cli;
pub mod e2e;
pub mod harness;
pub mod webdriver;
pub mod website;
