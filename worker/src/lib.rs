//! The worker: consumes queued HubSpot events and delivers impact.com
//! conversions, plus operator commands.
//!
//! - [`runtime`]: the machinery around messages (consumer, fair scheduling,
//!   retries and deferral, metrics, the dead-letter sink);
//! - [`pipeline`]: one event's path, the same for live traffic, replay and
//!   backfill (dedupe → privacy → portal gate → adjust → trigger → fetch →
//!   map → record → deliver);
//! - [`cli`]: the operator commands, over the operator features
//!   ([`dlq`], [`privacy`], [`backfill`], [`outcomes`], [`ops`]).
//!
//! [`run`] is the whole process (tests call it in-process with a fresh
//! queue prefix and database); [`process_message`] is one deterministic step.

pub mod backfill;
pub mod budget;
pub mod cli;
pub mod context;
pub mod dlq;
pub mod ops;
pub mod outcomes;
pub mod pipeline;
pub mod privacy;
pub mod runtime;

use std::time::Duration;

use anyhow::Context as _;
use shared::{broker::Topology, config::Settings};
use tokio_util::sync::CancellationToken;

pub use context::Worker;
pub use pipeline::{
    Batching, EventResult,
    message::{MessageMeta, MessageOutcome, process_message},
    process_event,
};

/// The broker topology the settings describe.
pub fn topology(settings: &Settings) -> anyhow::Result<Topology> {
    Ok(Topology::from_settings(settings)?)
}

/// Runs the worker until `shutdown`: migrates, then consumes the work queue.
pub async fn run(settings: Settings, shutdown: CancellationToken) -> anyhow::Result<()> {
    settings.validate_worker()?;
    // Installs the metrics recorder before the first counter is touched.
    let _ = shared::telemetry::metrics();
    let worker = Worker::connect(&settings)
        .await
        .context("starting the worker")?;
    let cipher = shared::crypto::SecretCipher::from_settings(&settings)?;
    ops::keys::check_decrypts(&worker.pool, &cipher).await?;
    run_with(worker, &settings, shutdown).await
}

/// Runs a worker built by the caller (tests share one pool this way).
pub async fn run_with(
    worker: Worker,
    settings: &Settings,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    if let Some(addr) = settings.worker_metrics_addr {
        runtime::metrics_server::serve(addr, shutdown.clone())
            .await
            .with_context(|| format!("binding CONNECTOR_WORKER_METRICS_ADDR {addr}"))?;
        runtime::queue_depth::spawn(
            settings.amqp_url.clone(),
            topology(settings)?,
            Duration::from_secs(15),
            shutdown.clone(),
        );
    }
    // LISTEN holds its connection: on the direct URL when one is set.
    let listen_pool = shared::db::direct::listen_pool(
        settings,
        &shared::db::budget::worker_app_name(),
        &worker.pool,
    )
    .context("CONNECTOR_DATABASE_DIRECT_URL")?;
    let listener = tokio::spawn(runtime::cache_listener::listen(
        worker.clone(),
        listen_pool,
        shutdown.clone(),
    ));
    let pruner = ops::retention::spawn(
        worker.pool.clone(),
        settings.retention_events_days,
        settings.retention_conversions_days,
        Duration::from_secs(settings.prune_interval_secs.max(60)),
        shutdown.clone(),
    );
    // Dead letters whose replay's worker died are given back.
    let reaper = dlq::lease::reap(
        worker.pool.clone(),
        (settings.replay_lease() / 2).clamp(Duration::from_secs(1), Duration::from_secs(30)),
        shutdown.clone(),
    );
    let poller = settings.outcomes_poll.then(|| {
        outcomes::spawn(
            worker.clone(),
            outcomes::PollConfig::from_settings(settings),
            shutdown.clone(),
        )
    });
    let sink = tokio::spawn(runtime::dead_letter_sink::run(
        worker.clone(),
        settings.amqp_url.clone(),
        topology(settings)?,
        shutdown.clone(),
    ));
    let replays = tokio::spawn(runtime::replay_requests::run(
        worker.clone(),
        settings.amqp_url.clone(),
        topology(settings)?,
        settings.replay_rate_per_sec,
        shutdown.clone(),
    ));
    let cfg = runtime::consumer::ConsumerConfig {
        amqp_url: settings.amqp_url.clone(),
        topology: topology(settings)?,
        prefetch: settings.worker_prefetch.max(1),
        grace: Duration::from_secs(settings.shutdown_grace_secs),
        fair: runtime::fair::FairConfig {
            concurrency: usize::from(settings.worker_concurrency.max(1)),
            portal_concurrency: usize::from(settings.worker_portal_concurrency.max(1)),
            portal_backlog: usize::from(settings.worker_portal_backlog),
        },
    };
    let result = runtime::consumer::consume(worker, cfg, shutdown.clone()).await;
    shutdown.cancel();
    let _ = listener.await;
    let _ = pruner.await;
    let _ = reaper.await;
    let _ = sink.await;
    let _ = replays.await;
    if let Some(p) = poller {
        let _ = p.await;
    }
    tracing::info!("worker stopped");
    result
}
