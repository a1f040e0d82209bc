//! The console: the connector website and its JSON API, the admin API, replay
//! requests carried out by a worker and their leases, secrets at rest and in
//! logs, account deletion, and the hostile-input catalogue (webhook, website,
//! operator surface and tenants).
//!
//! One test binary: each module below was a test file of its own.

#[allow(dead_code, unused_imports)] // Each binary uses a part of the harness.
#[path = "../../support/mod.rs"]
mod support;

mod account_deletion;
mod admin_api;
mod hostile_admin;
mod hostile_edge;
mod hostile_input;
mod hostile_tenant;
mod hostile_upstream;
mod hostile_web;
mod operator_pages;
mod replay_leases;
mod replays;
mod secrets;
mod settings_check;
mod token_refresh;
mod weak_secrets;
mod website_adjustments;
mod website_browser;
mod website_items;
mod website_mapping_editor;
mod website_routes;
mod website_story;
