//! Holding a dead letter's lease while a replay works on it: renewed every
//! third of its length, so it expires only when the replay stops without
//! ending it (the worker died). The reaper ([`reap`]) gives such dead
//! letters back.

use std::{future::Future, time::Duration};

use shared::db::{dead_letter_leases as leases, dead_letters::DeadLetterId};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

/// A replay's lease: who holds it, for how long at a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// `replay:<request id>`, or `<actor>:<random id>` for a CLI replay.
    pub holder: String,
    /// How long it lasts unless renewed.
    pub ttl: Duration,
}

impl Lease {
    /// A lease of its own for `actor` (each call a different holder).
    pub fn fresh(actor: &str, ttl: Duration) -> Self {
        Self {
            holder: format!("{actor}:{}", uuid::Uuid::new_v4().simple()),
            ttl,
        }
    }
}

/// Runs `work` while renewing `lease` on `id`.
pub async fn holding<T>(
    pool: &PgPool,
    id: DeadLetterId,
    lease: &Lease,
    work: impl Future<Output = T>,
) -> T {
    let renew = async {
        let mut tick = tokio::time::interval((lease.ttl / 3).max(Duration::from_millis(200)));
        tick.tick().await;
        loop {
            tick.tick().await;
            match leases::renew(pool, id, &lease.holder, lease.ttl).await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::warn!(dead_letter = %id, holder = %lease.holder, "replay lease lost (expired and taken or discarded); its outcome will not be recorded on the dead letter");
                    return std::future::pending::<()>().await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, dead_letter = %id, "replay lease not renewed; will try again")
                }
            }
        }
    };
    tokio::select! {
        out = work => out,
        () = renew => unreachable!("renewal never ends"),
    }
}

/// Gives back, every `every` until `shutdown`, the dead letters whose
/// replay's lease expired (audited, counted in
/// `worker_replay_leases_expired_total`).
pub fn reap(
    pool: PgPool,
    every: Duration,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    metrics::describe_counter!(
        "worker_replay_leases_expired_total",
        "Dead letters given back after their replay's lease expired (the replaying worker died)"
    );
    metrics::counter!("worker_replay_leases_expired_total").increment(0);
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(every) => {}
            }
            if let Err(e) = reap_all(&pool).await {
                tracing::warn!(error = %e, "reaping expired replay leases failed; will try again");
            }
        }
    })
}

/// Gives back every dead letter whose lease expired; returns how many.
pub async fn reap_all(pool: &PgPool) -> Result<usize, sqlx::Error> {
    let mut n = 0;
    while let Some(r) = leases::reap_one(pool).await? {
        n += 1;
        metrics::counter!("worker_replay_leases_expired_total").increment(1);
        tracing::warn!(dead_letter = %r.id, holder = ?r.holder, state = %r.state, "replay lease expired: the dead letter is given back");
        let detail = serde_json::json!({ "dead_letter": r.id, "holder": r.holder });
        shared::db::audit::record(
            pool,
            r.portal_id,
            "worker:lease-reaper",
            "dead_letter.lease_expired",
            &detail,
            &r.state,
        )
        .await?;
    }
    Ok(n)
}
