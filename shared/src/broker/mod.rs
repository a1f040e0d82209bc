//! RabbitMQ: the topology of docs/src/reference/broker.md, declared idempotently, and a
//! reconnecting publisher with confirms.
//!
//! ```text
//! {p}hubspot.events (topic) ──#──▶ {p}hubspot.events.work (quorum, delivery limit)
//!        ▲                                 │ dead-letter (at-least-once)
//!        │                                 ▼
//!  {p}hubspot.events.retry.<delay> ◀── worker    {p}hubspot.dead (quorum) ──▶ dead-letter sink
//!   (quorum, TTL, dead-letters back to the work queue)
//!
//! console ──replay id──▶ {p}hubspot.replays (quorum) ──▶ worker (replay requests)
//! ```

mod envelope;
mod nodes;
mod publisher;
pub mod replay;
mod topology;

pub use domain::retry::delay_label;
pub use envelope::{
    ATTEMPT_HEADER, DEFERRED_HEADER, EVENT_COUNT_HEADER, Envelope, INVALID_HEADER, PORTAL_HEADER,
    RECEIVED_AT_HEADER,
};
pub use nodes::{BrokerNodes, NODE_CONNECT_TIMEOUT, display_node};
pub use publisher::{OutgoingMessage, PublishError, Publisher};
pub use replay::{ReplayMode, ReplayRequest};
pub use topology::Topology;

use lapin::Connection;

/// Opens a connection to one of the nodes of `urls` (one AMQP URL, or
/// several separated by commas: see [`BrokerNodes`]), named so it is
/// recognisable in the management UI. Callers that reconnect keep a
/// [`BrokerNodes`] instead, so the next connection starts at another node.
pub async fn connect(urls: &str, name: &str) -> lapin::Result<Connection> {
    let nodes = BrokerNodes::parse(urls).map_err(|e| {
        lapin::Error::from(std::io::Error::new(std::io::ErrorKind::InvalidInput, e))
    })?;
    nodes.connect(name).await
}
