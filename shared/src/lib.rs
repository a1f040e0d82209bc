//! Shared by the connector's processes: configuration, telemetry, webhook
//! signatures, HubSpot events and the RabbitMQ topology and publisher.

pub mod broker;
pub mod config;
pub mod events;
pub mod signature;
pub mod telemetry;
