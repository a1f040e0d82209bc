//! The console: the connector website and its JSON API, the admin API, replay
//! requests carried out by a worker, secrets at rest and in logs, and the
//! hostile-input catalogue.
//!
//! One test binary: each module below was a test file of its own.

#[allow(dead_code, unused_imports)] // Each binary uses a part of the harness.
#[path = "../../support/mod.rs"]
mod support;

mod admin_api;
mod hostile_edge;
mod hostile_input;
mod replays;
mod secrets;
mod weak_secrets;
mod website_adjustments;
mod website_browser;
mod website_routes;
