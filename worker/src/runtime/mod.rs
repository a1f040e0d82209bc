//! The machinery around messages: the consumer (prefetch, acks, retries,
//! reconnection), fair scheduling across portals, held and deferred
//! messages, the metrics server and queue-depth gauges, the configuration
//! listener, the dead-letter sink and the console's replay requests.

pub mod cache_listener;
pub mod consumer;
pub mod dead_letter_sink;
pub mod defer;
pub mod fair;
pub mod held;
pub mod metrics_server;
pub mod pull_back;
pub mod queue_depth;
pub mod replay_requests;
mod side_queue;
