//! Shared by the connector's processes: configuration, telemetry, webhook
//! signatures, HubSpot events and the RabbitMQ topology and publisher.

pub mod adjustments;
#[cfg(feature = "jemalloc")]
mod alloc;
pub mod broker;
pub mod config;
pub mod crypto;
pub mod db;
pub mod events;
pub mod failure;
pub mod hubspot;
pub mod impact;
pub mod mapping;
pub mod object_type;
pub mod portal;
pub mod signature;
pub mod telemetry;
pub mod triggers;
