//! The pipeline end to end: ingest's webhook edge, the worker's consumer and
//! pipeline (dedupe, triggers, fetch, mapping, delivery, retries, dead
//! letters, adjustments, outcomes, privacy, OAuth tokens, batching and
//! fairness), and the database queries behind them, against real RabbitMQ
//! and PostgreSQL with the sandbox standing in for HubSpot and impact.com.
//!
//! One test binary: each module below was a test file of its own.

#[allow(dead_code, unused_imports)] // Each binary uses a part of the harness.
#[path = "../../support/mod.rs"]
mod support;

mod adjustments;
mod backfill;
mod batching;
mod connection_budget;
mod consumer;
mod db_batches;
mod db_indexes;
mod delivery_leases;
mod dlq;
mod failures;
mod hubspot_paging;
mod hubspot_shared_budget;
mod idempotency;
mod ingest_e2e;
mod items_currency;
mod mapping_sources;
mod merges;
mod oauth;
mod odd_events;
mod outcomes;
mod outcomes_budget;
mod pgbouncer;
mod privacy;
mod record_batch;
mod seed_tables;
mod throughput;
mod webhook_secrets;
