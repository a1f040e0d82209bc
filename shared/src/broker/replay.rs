//! Replay requests through the broker: the console records a request
//! (`shared::db::replays`) and publishes its id here; a worker consuming
//! [`super::Topology::replay_queue`] carries it out.

use std::time::Duration;

use lapin::types::FieldTable;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{OutgoingMessage, PublishError, Publisher};

/// How to replay dead letters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ReplayMode {
    /// Show what would be sent; change nothing.
    pub dry_run: bool,
    /// Resend the stored payload instead of re-evaluating.
    pub as_sent: bool,
    /// Send even a conversion that was delivered already.
    pub force: bool,
}

/// The message on the replays queue: the request to carry out. Its dead
/// letters, mode and scope are in its `replay_requests` row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplayRequest {
    /// The `replay_requests` row.
    pub replay_id: Uuid,
}

impl ReplayRequest {
    /// The message body (JSON).
    pub fn to_body(&self) -> Vec<u8> {
        // A struct of one UUID always serialises.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Reads a message body.
    pub fn from_body(body: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(body)
    }
}

/// Publishes `request` to the replays queue and waits for the broker's
/// confirm (persistent, mandatory).
pub async fn publish(
    publisher: &Publisher,
    request: &ReplayRequest,
    timeout: Duration,
) -> Result<(), PublishError> {
    let queue = publisher.topology().replay_queue();
    let body = request.to_body();
    let message = OutgoingMessage {
        exchange: "",
        routing_key: &queue,
        body: &body,
        headers: FieldTable::default(),
        message_id: request.replay_id.to_string(),
    };
    publisher.publish_all(&[message], timeout).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_round_trips_as_json() {
        let r = ReplayRequest {
            replay_id: Uuid::new_v4(),
        };
        let body = r.to_body();
        assert!(String::from_utf8_lossy(&body).contains("replay_id"));
        assert_eq!(ReplayRequest::from_body(&body).ok(), Some(r));
        assert!(ReplayRequest::from_body(b"[1]").is_err());
    }

    #[test]
    fn a_mode_defaults_to_a_plain_replay() {
        let m: ReplayMode = serde_json::from_str(r#"{"force":true}"#).unwrap_or_default();
        assert_eq!(
            m,
            ReplayMode {
                force: true,
                ..ReplayMode::default()
            }
        );
    }
}
