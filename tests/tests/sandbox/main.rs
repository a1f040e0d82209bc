//! The sandbox's fakes held to HubSpot's and impact.com's published behaviour:
//! the CRM and OAuth APIs, webhook delivery and signing, impact.com's
//! Conversions and Actions APIs, and ingest receiving what the fake sends.
//!
//! One test binary: each module below was a test file of its own.

#[allow(dead_code, unused_imports)] // Each binary uses a part of the harness.
#[path = "../../support/mod.rs"]
mod support;

mod account_info;
mod hubspot;
mod hubspot_client;
mod impact;
mod impact_reads;
mod ingest;
mod oauth;
mod webhooks;
mod webhooks_api;
