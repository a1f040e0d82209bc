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

mod publisher;
pub mod replay;
mod topology;

pub use publisher::{OutgoingMessage, PublishError, Publisher};
pub use replay::{ReplayMode, ReplayRequest};
pub use topology::{Topology, delay_label};

use lapin::{Connection, ConnectionProperties};

/// Message header carrying our own attempt count (we do not rely on `x-death`).
pub const ATTEMPT_HEADER: &str = "x-connector-attempt";
/// Message header naming the portal of every event in the message.
pub const PORTAL_HEADER: &str = "x-portal-id";
/// Message header with the number of events in the message.
pub const EVENT_COUNT_HEADER: &str = "x-event-count";
/// Message header with the epoch milliseconds at which ingest accepted the webhook.
pub const RECEIVED_AT_HEADER: &str = "x-received-at-ms";

/// Opens a connection, named so it is recognisable in the management UI.
pub async fn connect(url: &str, name: &str) -> lapin::Result<Connection> {
    let props = ConnectionProperties::default().with_connection_name(name.into());
    Connection::connect(url, props).await
}
