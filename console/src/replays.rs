//! Replays requested from the console: recorded in `replay_requests`, then
//! published (with a publisher confirm) to the replays queue for a worker
//! to carry out. The console answers with the request's id at once.
//!
//! A request for one dead letter (not a dry run) reserves it first: the
//! dead letter is taken (`replaying`) under the request's lease in the
//! same transaction that records the request, so two operators asking at
//! once get one request and one refusal (409), and a discard cannot slip
//! in before the worker starts. The worker carrying the request out takes
//! the lease over (same holder); if none does before it expires, the
//! dead letter is given back. Bulk requests take each dead letter when the
//! worker reaches it.

use std::time::Duration;

use shared::{
    broker::{Publisher, ReplayMode, ReplayRequest, Topology, replay},
    config::{ConfigError, Settings},
    db::{
        dead_letter_leases::{self as leases, Unavailable},
        dead_letters::DeadLetterId,
        replays,
    },
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
    /// The dead letter cannot be replayed now: unknown, replayed or
    /// discarded already, or being replayed.
    #[error("dead letter {id}: {why}")]
    Unavailable {
        /// The dead letter.
        id: i64,
        /// Why.
        why: Unavailable,
    },
}

/// Records and queues replay requests. Cheap to clone.
#[derive(Clone)]
pub struct ReplayDesk {
    publisher: Publisher,
    timeout: Duration,
    lease: Duration,
}

impl ReplayDesk {
    /// The desk of these settings (the broker connects on first use).
    pub fn from_settings(s: &Settings) -> Result<Self, ConfigError> {
        let topology = Topology::from_settings(s)?;
        Ok(Self {
            publisher: Publisher::new(&s.amqp_url, "connector-console", topology, 1),
            // The first request also opens the connection: more than a
            // webhook's confirm budget.
            timeout: s.publish_timeout().max(Duration::from_secs(5)),
            lease: s.replay_lease(),
        })
    }

    /// Records a request for `dead_letters` (limited to `portal` when
    /// given) and queues it; returns its id once the broker confirmed it.
    /// One dead letter (not a dry run) is reserved first.
    pub async fn request(
        &self,
        pool: &PgPool,
        actor: &str,
        portal: Option<i64>,
        dead_letters: &[i64],
        mode: ReplayMode,
    ) -> Result<Uuid, RequestError> {
        let id = Uuid::new_v4();
        let holder = replays::lease_holder(id);
        let reserved = match dead_letters {
            [one] if !mode.dry_run => {
                let mut tx = pool.begin().await?;
                let letter = DeadLetterId(*one);
                if let Err(why) =
                    leases::claim_on(&mut tx, letter, &holder, self.lease, portal).await?
                {
                    return Err(RequestError::Unavailable { id: *one, why });
                }
                replays::insert_as(&mut *tx, id, actor, portal, dead_letters, mode).await?;
                tx.commit().await?;
                Some(letter)
            }
            _ => {
                replays::insert_as(pool, id, actor, portal, dead_letters, mode).await?;
                None
            }
        };
        let message = ReplayRequest { replay_id: id };
        if let Err(e) = replay::publish(&self.publisher, &message, self.timeout).await {
            tracing::warn!(error = %e, replay = %id, "replay request not queued");
            replays::finish(pool, id, Some(&format!("not queued: {e}"))).await?;
            if let Some(letter) = reserved {
                let state = domain::status::DeadLetterState::Open;
                leases::finish(pool, letter, &holder, state, actor, "replay not queued").await?;
            }
            return Err(e.into());
        }
        Ok(id)
    }

    /// Closes the broker connection (shutdown).
    pub async fn close(&self) {
        self.publisher.close().await;
    }
}
