//! Replay requests from the console: consumes `{prefix}hubspot.replays`
//! (one request id per message), carries the request out with the same
//! machinery as `worker dlq replay` ([`crate::dlq::replay::replay_held`],
//! under the request's lease: `replay:<id>`),
//! stores each dead letter's report as it goes, marks the request `done`
//! and only then acknowledges. A request already finished is acknowledged
//! without running again.

use std::time::Duration;

use lapin::{
    message::Delivery,
    options::{BasicAckOptions, BasicNackOptions},
};
use serde_json::json;
use shared::{
    broker::{ReplayRequest, Topology},
    db::{
        dead_letters::{self, DeadLetterId},
        replays::{self, ReplayRequestRow},
    },
};
use tokio_util::sync::CancellationToken;

use super::side_queue::SideQueue;
use crate::{
    Worker,
    dlq::replay::{Lease, ReplayMode, ReplayOutcome, ReplayReport, replay_held},
};

/// Consumes replay requests until `shutdown`, reconnecting when the broker
/// goes away; dead letters are replayed at most `per_sec` a second.
pub async fn run(
    w: Worker,
    amqp_url: String,
    topology: Topology,
    per_sec: u32,
    shutdown: CancellationToken,
) {
    let queue = SideQueue {
        name: "replay-requests",
        amqp_url: &amqp_url,
        queue: topology.replay_queue(),
        topology: &topology,
    };
    queue
        .drain(&shutdown, |d| {
            let w = w.clone();
            async move {
                settle(&w, &d, per_sec).await?;
                Ok(())
            }
        })
        .await;
}

/// Carries out one message's request and acknowledges it once the outcome
/// is stored; a database failure requeues it.
async fn settle(w: &Worker, d: &Delivery, per_sec: u32) -> lapin::Result<bool> {
    let request = match ReplayRequest::from_body(&d.data) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "malformed replay request; dropped");
            return d.acker.ack(BasicAckOptions::default()).await;
        }
    };
    match carry_out(w, request, per_sec).await {
        Ok(()) => d.acker.ack(BasicAckOptions::default()).await,
        Err(e) => {
            tracing::warn!(error = %e, replay = %request.replay_id, "replay request interrupted; will try again");
            tokio::time::sleep(Duration::from_secs(1)).await;
            let requeue = BasicNackOptions {
                requeue: true,
                ..Default::default()
            };
            d.acker.nack(requeue).await
        }
    }
}

/// Runs request `request` unless it is finished or unknown.
pub async fn carry_out(
    w: &Worker,
    request: ReplayRequest,
    per_sec: u32,
) -> Result<(), sqlx::Error> {
    let id = request.replay_id;
    let Some(row) = replays::start(&w.pool, id).await? else {
        tracing::info!(replay = %id, "replay request finished already (or unknown); not run again");
        return Ok(());
    };
    let mode = ReplayMode {
        dry_run: row.mode.dry_run,
        as_sent: row.mode.as_sent,
        force: row.mode.force,
    };
    let mut tick = tokio::time::interval(Duration::from_secs(1) / per_sec.max(1));
    for letter in &row.dead_letter_ids {
        tick.tick().await;
        let report = replay_in_scope(w, &row, DeadLetterId(*letter), mode).await?;
        replays::push_result(&w.pool, id, &json!(report)).await?;
    }
    replays::finish(&w.pool, id, None).await?;
    tracing::info!(replay = %id, dead_letters = row.dead_letter_ids.len(), "replay request done");
    Ok(())
}

/// Replays `letter` as the request's actor; a request limited to a portal
/// never touches another portal's dead letter (reported not found).
async fn replay_in_scope(
    w: &Worker,
    row: &ReplayRequestRow,
    letter: DeadLetterId,
    mode: ReplayMode,
) -> Result<ReplayReport, sqlx::Error> {
    if let Some(portal) = row.portal_id {
        let owner = dead_letters::get(&w.pool, letter)
            .await?
            .and_then(|l| l.portal_id);
        if owner != Some(portal) {
            return Ok(ReplayReport {
                id: letter,
                outcome: ReplayOutcome::NotFound,
                detail: "no such dead letter for this portal".into(),
                preview: None,
            });
        }
    }
    // The console may have reserved the dead letter under this holder.
    let lease = Lease {
        holder: replays::lease_holder(row.id),
        ttl: w.replay_lease,
    };
    replay_held(w, letter, mode, &row.actor, &lease).await
}
