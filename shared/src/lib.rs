//! The I/O the connector's processes share: configuration, telemetry, the
//! RabbitMQ topology and publisher, every SQL statement (`db`), the HubSpot
//! and impact.com clients, and secret encryption. The pure domain (events,
//! signatures, triggers, mappings, portal documents) is the `domain` crate.

#[cfg(feature = "jemalloc")]
mod alloc;
pub mod broker;
pub mod config;
pub mod crypto;
pub mod db;
#[cfg(feature = "http")]
pub mod http;
pub mod hubspot;
pub mod impact;
pub mod service;
pub mod telemetry;
pub mod tls;
pub mod upstream;
