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
mod publisher;
pub mod replay;
mod topology;

pub use domain::retry::delay_label;
pub use envelope::{
    ATTEMPT_HEADER, DEFERRED_HEADER, EVENT_COUNT_HEADER, Envelope, INVALID_HEADER, PORTAL_HEADER,
    RECEIVED_AT_HEADER,
};
pub use publisher::{OutgoingMessage, PublishError, Publisher};
pub use replay::{ReplayMode, ReplayRequest};
pub use topology::Topology;

use lapin::{Connection, ConnectionProperties};

/// Opens a connection, named so it is recognisable in the management UI.
pub async fn connect(url: &str, name: &str) -> lapin::Result<Connection> {
    let props = ConnectionProperties::default().with_connection_name(name.into());
    Connection::connect(url, props).await
}
