//! The RabbitMQ consumer: prefetch-bounded concurrent processing, ack after
//! commit, retries through the delay queues, reconnection, graceful shutdown.

use std::{sync::Arc, time::Duration};

use futures::{FutureExt, StreamExt};
use lapin::{
    Channel, Connection,
    message::Delivery,
    options::{
        BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions,
    },
    types::FieldTable,
};
use shared::broker::{BrokerNodes, Publisher, Topology};
use tokio::{
    sync::{OwnedSemaphorePermit, Semaphore},
    task::JoinSet,
};
use tokio_util::sync::CancellationToken;

use super::{
    dead_letter_sink,
    defer::defer,
    fair::{Admission, FairConfig, FairGate, Running, Ticket, portal_of},
    held::HeldBody,
    pull_back::PullBack,
};
use crate::{
    Worker,
    pipeline::message::{MessageMeta, MessageOutcome, process_message},
};

/// How the consumer connects and behaves.
pub struct ConsumerConfig {
    /// AMQP URL, or the nodes of a cluster separated by commas.
    pub amqp_url: String,
    /// Queue names.
    pub topology: Topology,
    /// Unacknowledged messages held (and processed concurrently).
    pub prefetch: u16,
    /// How long in-flight messages may take to finish at shutdown.
    pub grace: Duration,
    /// Fair scheduling across portals.
    pub fair: FairConfig,
}

/// Consumes the work queue until `shutdown`, reconnecting when the broker goes away.
pub async fn consume(
    w: Worker,
    cfg: ConsumerConfig,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let publisher = Publisher::new(&cfg.amqp_url, "worker-retry", cfg.topology.clone(), 1);
    // A lost connection is replaced by one to the next node of a cluster.
    let nodes = BrokerNodes::parse(&cfg.amqp_url).map_err(anyhow::Error::msg)?;
    let cfg = Arc::new(cfg);
    let mut backoff = Duration::from_millis(200);
    while !shutdown.is_cancelled() {
        match session(&w, &cfg, &nodes, &publisher, &shutdown).await {
            Ok(()) => backoff = Duration::from_millis(200),
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?backoff, "broker session ended; reconnecting");
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
    publisher.close().await;
    Ok(())
}

/// One connection's life: consume until shutdown or connection loss.
async fn session(
    w: &Worker,
    cfg: &Arc<ConsumerConfig>,
    nodes: &BrokerNodes,
    publisher: &Publisher,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    let conn: Connection = nodes.connect("worker").await?;
    cfg.topology.declare(&conn).await?;
    let ch: Channel = conn.create_channel().await?;
    // At most `prefetch` unacknowledged messages on this channel: the
    // broker's back-pressure, and our concurrency bound.
    ch.basic_qos(cfg.prefetch, BasicQosOptions::default())
        .await?;
    let tag = format!("worker-{}", uuid::Uuid::new_v4().simple());
    let mut consumer = ch
        .basic_consume(
            cfg.topology.work_queue().as_str().into(),
            tag.as_str().into(),
            // Manual acks (no_ack: false): a message is removed only after
            // its outcome is committed.
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    tracing::info!(queue = %cfg.topology.work_queue(), prefetch = cfg.prefetch, "consuming");
    let prefetch = usize::from(cfg.prefetch);
    let permits = Arc::new(Semaphore::new(prefetch));
    let gate = FairGate::new(cfg.fair);
    let mut pull_back = PullBack::new(&cfg.topology, prefetch, cfg.fair);
    let mut tasks = JoinSet::new();
    let ended = loop {
        let pull_due = pull_back.due();
        let next = tokio::select! {
            () = shutdown.cancelled() => break None,
            d = consumer.next() => d,
            () = sleep_until_some(pull_due), if pull_due.is_some() => {
                let held = prefetch - permits.available_permits();
                for (permit, d) in pull_back.pull(&ch, held, &permits).await {
                    dispatch(&mut tasks, (permit, d), &gate, (w, cfg, publisher));
                }
                continue;
            }
            Some(joined) = tasks.join_next(), if !tasks.is_empty() => {
                if let Err(e) = joined
                    && e.is_panic()
                {
                    // Outside the message's own panic guard: its delivery
                    // stays unsettled until the channel closes.
                    tracing::error!(error = %e, "a message task panicked");
                }
                continue;
            }
        };
        let delivery = match next {
            Some(Ok(d)) => d,
            Some(Err(e)) => break Some(anyhow::Error::from(e)),
            None => break Some(anyhow::anyhow!("consumer stream ended")),
        };
        let permit = permits.clone().acquire_owned().await?;
        dispatch(&mut tasks, (permit, delivery), &gate, (w, cfg, publisher));
    };
    if ended.is_none() {
        // Stop deliveries before draining, so nothing new arrives.
        let _ = ch
            .basic_cancel(tag.as_str().into(), BasicCancelOptions::default())
            .await;
    }
    // Let in-flight messages finish: their outcomes get committed even when
    // the connection is gone (their acks then fail, and the redelivered
    // messages are recognised as done instead of being posted again).
    let drained = tokio::time::timeout(cfg.grace, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!("grace period elapsed; unfinished messages will be redelivered");
        tasks.abort_all();
    }
    match ended {
        None => {
            let _ = conn.close(200, "shutdown".into()).await;
            Ok(())
        }
        Some(e) => Err(e),
    }
}

/// Admits (or defers) a message holding `permit`, its place in the prefetch
/// window, and processes it on a task of its own.
fn dispatch(
    tasks: &mut JoinSet<()>,
    (permit, delivery): (OwnedSemaphorePermit, Delivery),
    gate: &FairGate,
    (w, cfg, publisher): (&Worker, &Arc<ConsumerConfig>, &Publisher),
) {
    let (w, cfg, publisher) = (w.clone(), cfg.clone(), publisher.clone());
    let admission = gate.admit(portal_of(&delivery));
    let gate = gate.clone();
    tasks.spawn(async move {
        let delivery = match admission {
            Admission::Admit(ticket) => Ok((ticket, delivery)),
            Admission::Defer => match Box::pin(defer(&cfg.topology, &publisher, delivery)).await {
                Ok(()) => Err(()),
                // Not deferred after all: hold it beyond the bound.
                Err(d) => Ok((gate.admit_anyway(portal_of(&d)), *d)),
            },
        };
        if let Ok((ticket, mut delivery)) = delivery {
            let Some(running) = start(&ticket, &mut delivery).await else {
                return;
            };
            // Boxed: a held message's task stays small while it waits
            // (the processing future is ~13 KB; up to the prefetch of
            // them wait at once).
            Box::pin(handle(&w, &cfg, &publisher, delivery)).await;
            drop((running, ticket));
        }
        drop(permit);
    });
}

/// Sleeps until `at`; never returns for `None` (its `select!` branch is
/// disabled then anyway).
async fn sleep_until_some(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Takes the message's slots; while it waits for them, its body is held
/// compressed. `None`: the body could not be restored (a bug) and the
/// message went back to the queue, which still has it as it came.
async fn start(ticket: &Ticket, delivery: &mut Delivery) -> Option<Running> {
    if let Some(running) = ticket.try_start() {
        return Some(running);
    }
    let held = HeldBody::hold(std::mem::take(&mut delivery.data));
    let running = ticket.start().await;
    match held.restore() {
        Ok(body) => {
            delivery.data = body;
            Some(running)
        }
        Err(e) => {
            tracing::error!(error = %e, "a held message could not be restored; requeued");
            requeue(delivery).await;
            None
        }
    }
}

/// Processes one delivery and settles it with the broker.
async fn handle(w: &Worker, cfg: &ConsumerConfig, publisher: &Publisher, d: Delivery) {
    let meta = MessageMeta::from_properties(&d.properties);
    let started = std::time::Instant::now();
    let processed = std::panic::AssertUnwindSafe(process_message(w, &d.data, meta))
        .catch_unwind()
        .await;
    metrics::histogram!("worker_message_seconds").record(started.elapsed().as_secs_f64());
    let Ok(outcome) = processed else {
        // A bug, not the message's fault (probably): redeliver it. A
        // message that keeps crashing is cut off by the queue's delivery
        // limit and dead-lettered.
        tracing::error!("panic while processing a message; requeued");
        metrics::counter!("worker_messages_total", "outcome" => "panic").increment(1);
        requeue(&d).await;
        return;
    };
    let settled = match outcome {
        MessageOutcome::Done(_) => d.acker.ack(BasicAckOptions::default()).await,
        MessageOutcome::Malformed(problem) => {
            tracing::error!(%problem, "malformed message dead-lettered");
            // Not requeued: the work queue dead-letters it to the dead queue.
            d.acker
                .nack(BasicNackOptions {
                    requeue: false,
                    ..Default::default()
                })
                .await
        }
        MessageOutcome::Retry(f) if exhausted(cfg, meta.attempt, f.retry_after) => {
            dead_letter_sink::exhausted(w, &d, meta.attempt, &f).await
        }
        MessageOutcome::Retry(f) => match schedule_retry(
            cfg,
            publisher,
            &d,
            step_for(cfg, meta.attempt, f.retry_after),
        )
        .await
        {
            Ok(()) => d.acker.ack(BasicAckOptions::default()).await,
            Err(requeue) => {
                d.acker
                    .nack(BasicNackOptions {
                        requeue,
                        ..Default::default()
                    })
                    .await
            }
        },
    };
    if let Err(e) = settled {
        tracing::warn!(error = %e, "could not settle a message; it will be redelivered");
    }
}

/// Returns a message to the queue as it is (redelivered at once; a message
/// that keeps coming back is cut off by the queue's delivery limit).
async fn requeue(d: &Delivery) {
    let requeue = BasicNackOptions {
        requeue: true,
        ..Default::default()
    };
    if let Err(e) = d.acker.nack(requeue).await {
        tracing::warn!(error = %e, "could not settle a message; it will be redelivered");
    }
}

/// True when the ladder has no step left for this message.
fn exhausted(cfg: &ConsumerConfig, attempt: u32, retry_after: Option<Duration>) -> bool {
    cfg.topology
        .retry_queue(step_for(cfg, attempt, retry_after) as usize)
        .is_none()
}

/// The ladder step to wait on: the next one, or a later one when the remote
/// side asked for a longer wait (e.g. HubSpot's daily limit).
fn step_for(cfg: &ConsumerConfig, attempt: u32, retry_after: Option<Duration>) -> u32 {
    let delays = &cfg.topology.retry_delays;
    let Some(wait) = retry_after else {
        return attempt;
    };
    let long_enough = delays
        .iter()
        .position(|d| *d >= wait)
        .unwrap_or(delays.len().saturating_sub(1));
    attempt.max(u32::try_from(long_enough).unwrap_or(u32::MAX))
}

/// Republishes the message to the next delay queue with its attempt count
/// raised. `Err(requeue)`: settle with a nack instead — `false` when the
/// ladder is exhausted (the message is dead-lettered), `true` when the
/// broker refused the republish (immediate redelivery, bounded by the
/// work queue's delivery limit).
async fn schedule_retry(
    cfg: &ConsumerConfig,
    publisher: &Publisher,
    d: &Delivery,
    attempt: u32,
) -> Result<(), bool> {
    let Some(queue) = cfg.topology.retry_queue(attempt as usize) else {
        tracing::error!(attempt, "retries exhausted; message dead-lettered");
        metrics::counter!("worker_messages_total", "outcome" => "dead_lettered").increment(1);
        return Err(false);
    };
    let republished = super::defer::republish(publisher, d, &queue, |e| e.attempt = attempt + 1);
    match republished.await {
        Ok(()) => {
            let step = shared::broker::delay_label(cfg.topology.retry_delays[attempt as usize]);
            metrics::counter!("worker_retries_total", "step" => step).increment(1);
            tracing::info!(queue = %queue, attempt = attempt + 1, "message scheduled for retry");
            Ok(())
        }
        Err(e) => {
            tracing::warn!(error = %e, "retry publish failed; requeueing");
            Err(true)
        }
    }
}
