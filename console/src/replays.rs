//! Replays requested from the console: recorded in `replay_requests`, then
//! published (with a publisher confirm) to the replays queue for a worker
//! to carry out. The console answers with the request's id at once.

use std::time::Duration;

use shared::{
    broker::{Publisher, ReplayMode, ReplayRequest, Topology, replay},
    config::{ConfigError, Settings},
    db::replays,
};
use sqlx::PgPool;
use uuid::Uuid;

/// Why a replay could not be requested.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// The database is unreachable.
    #[error("database unavailable: {0}")]
    Database(#[from] sqlx::Error),
    /// The broker did not take the request (it is recorded `failed`).
    #[error("the replay could not be queued: {0}")]
    Broker(#[from] shared::broker::PublishError),
}

/// Records and queues replay requests. Cheap to clone.
#[derive(Clone)]
pub struct ReplayDesk {
    publisher: Publisher,
    timeout: Duration,
}

impl ReplayDesk {
    /// The desk of these settings (the broker connects on first use).
    pub fn from_settings(s: &Settings) -> Result<Self, ConfigError> {
        let topology = Topology {
            prefix: s.queue_prefix.clone(),
            retry_delays: s.retry_delays()?,
            delivery_limit: s.delivery_limit,
        };
        Ok(Self {
            publisher: Publisher::new(&s.amqp_url, "connector-console", topology, 1),
            // The first request also opens the connection: more than a
            // webhook's confirm budget.
            timeout: s.publish_timeout().max(Duration::from_secs(5)),
        })
    }

    /// Records a request for `dead_letters` (limited to `portal` when
    /// given) and queues it; returns its id once the broker confirmed it.
    pub async fn request(
        &self,
        pool: &PgPool,
        actor: &str,
        portal: Option<i64>,
        dead_letters: &[i64],
        mode: ReplayMode,
    ) -> Result<Uuid, RequestError> {
        let id = replays::insert(pool, actor, portal, dead_letters, mode).await?;
        let message = ReplayRequest { replay_id: id };
        if let Err(e) = replay::publish(&self.publisher, &message, self.timeout).await {
            tracing::warn!(error = %e, replay = %id, "replay request not queued");
            replays::finish(pool, id, Some(&format!("not queued: {e}"))).await?;
            return Err(e.into());
        }
        Ok(id)
    }

    /// Closes the broker connection (shutdown).
    pub async fn close(&self) {
        self.publisher.close().await;
    }
}
