//! Building blocks of the benchmarks: child processes, load generators,
//! the broker ceiling and resource readings.

pub mod cpu;
pub mod floor;
pub mod pipeline;
pub mod portals;
pub mod services;

pub use services::{
    ServicePeaks, ServiceReadings, ServiceRss, listener_pid, sample_services, service_ports,
};

use std::{
    process::Stdio,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use hdrhistogram::Histogram;
use lapin::{
    BasicProperties,
    options::{BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions, QueueDeleteOptions},
    types::{AMQPValue, FieldTable},
};
use secrecy::ExposeSecret;
use shared::config::Settings;
use tokio::process::{Child, Command};

use crate::{
    binaries::Binaries,
    process::{free_port, stop_gracefully},
    support::{self, WEBHOOK_PATH},
};
use services::field_kb;

/// Number of CPU cores.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Peak resident set size (VmHWM) of a process, in KiB.
pub fn peak_rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| field_kb(&s, "VmHWM:"))
        .unwrap_or(0)
}

/// Ingest running as a child process (the real `ingest` executable), so
/// its memory is measured alone.
pub struct IngestChild {
    child: Child,
    addr: String,
}

impl IngestChild {
    /// Starts `ingest` with `settings` as environment on a free port and
    /// waits until it is ready.
    pub async fn spawn(bins: &Binaries, settings: &Settings) -> anyhow::Result<Self> {
        Self::spawn_with(bins, settings, &[]).await
    }

    /// [`IngestChild::spawn`] with more environment variables (e.g. the
    /// listener's limits, `CONNECTOR_HTTP_*`).
    pub async fn spawn_with(
        bins: &Binaries,
        settings: &Settings,
        env: &[(&str, String)],
    ) -> anyhow::Result<Self> {
        let addr = format!("127.0.0.1:{}", free_port()?);
        let mut cmd = Command::new(bins.path("ingest"));
        // Unset means no default secret (an empty one is refused).
        if let Some(secret) = &settings.hubspot_client_secret {
            cmd.env("CONNECTOR_HUBSPOT_CLIENT_SECRET", secret.expose_secret());
        }
        cmd.env("CONNECTOR_AMQP_URL", &settings.amqp_url)
            .env("CONNECTOR_QUEUE_PREFIX", &settings.queue_prefix)
            .env("CONNECTOR_INGEST_ADDR", &addr)
            .env("CONNECTOR_LOG", &settings.log)
            .env("CONNECTOR_DATABASE_URL", &settings.database_url)
            .env(
                "CONNECTOR_WEBHOOK_SECRETS_DB",
                settings.webhook_secrets_db.to_string(),
            );
        if let Some(path) = settings.webhook_secrets_path() {
            cmd.env("CONNECTOR_WEBHOOK_SECRETS_FILE", path);
        }
        cmd.envs(env.iter().map(|(k, v)| (*k, v.as_str())));
        let mut child = cmd
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting ingest")?;
        let client = reqwest::Client::new();
        let started = Instant::now();
        loop {
            if client
                .get(format!("http://{addr}/readyz"))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
            {
                break;
            }
            if let Some(status) = child.try_wait()? {
                bail!("ingest exited at start-up ({status})");
            }
            if started.elapsed() > Duration::from_secs(30) {
                bail!("ingest was not ready on {addr} within 30 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(Self { child, addr })
    }

    /// The webhook URL.
    pub fn webhook_url(&self) -> String {
        format!("http://{}{}", self.addr, WEBHOOK_PATH)
    }

    /// Peak RSS so far, in KiB.
    pub fn peak_rss_kb(&self) -> u64 {
        self.child.id().map_or(0, peak_rss_kb)
    }

    /// Resident set size now (VmRSS), in KiB.
    pub fn rss_kb(&self) -> u64 {
        self.child.id().map_or(0, services::rss_kb)
    }

    /// Its process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Where it listens (`127.0.0.1:port`).
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Asks for a graceful stop (SIGTERM) and waits.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        stop_gracefully(&mut self.child, Duration::from_secs(30)).await?;
        Ok(())
    }
}

/// What a load run observed.
pub struct LoadResult {
    /// Events in accepted requests.
    pub events: u64,
    /// Requests sent.
    pub requests: u64,
    /// Requests not answered 200.
    pub failures: u64,
    /// Acknowledgement latency of accepted requests, in microseconds.
    pub latency_us: Histogram<u64>,
}

impl LoadResult {
    /// Median latency in milliseconds.
    pub fn p50_ms(&self) -> f64 {
        self.latency_us.value_at_quantile(0.50) as f64 / 1000.0
    }

    /// 99th percentile latency in milliseconds.
    pub fn p99_ms(&self) -> f64 {
        self.latency_us.value_at_quantile(0.99) as f64 / 1000.0
    }
}

/// The first portal [`drive_webhooks`] sends for (connection `w` sends for
/// portal `FIRST_PORTAL + w`).
pub const FIRST_PORTAL: u64 = 1000;

/// The webhook secret of `portal` in benchmarks with per-portal secrets.
pub fn portal_secret(portal: u64) -> String {
    format!("bench-private-app-secret-{portal}")
}

/// A secrets file (`CONNECTOR_WEBHOOK_SECRETS_FILE`) giving `portals`
/// portals from [`FIRST_PORTAL`] on their own [`portal_secret`].
pub fn write_secrets_file(path: &std::path::Path, portals: u64) -> std::io::Result<()> {
    let text: String = (FIRST_PORTAL..FIRST_PORTAL + portals)
        .map(|p| format!("{p}={}\n", portal_secret(p)))
        .collect();
    std::fs::write(path, text)
}

/// How [`drive_webhooks`] signs.
#[derive(Debug, Clone)]
pub enum Signing {
    /// Every request with this secret (the default one).
    Default(String),
    /// Each portal's request with its [`portal_secret`].
    PerPortal,
}

impl Signing {
    fn secret(&self, portal: u64) -> String {
        match self {
            Self::Default(s) => s.clone(),
            Self::PerPortal => portal_secret(portal),
        }
    }
}

/// Sends signed batches of `batch` events with `concurrency` requests in
/// flight for `duration`.
pub async fn drive_webhooks(
    url: &str,
    signing: &Signing,
    concurrency: usize,
    batch: usize,
    duration: Duration,
) -> anyhow::Result<LoadResult> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()?;
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for w in 0..concurrency {
        let portal = FIRST_PORTAL + w as u64;
        let (client, url, secret, stop) = (
            client.clone(),
            url.to_owned(),
            signing.secret(portal),
            stop.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut hist = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3)
                .map_err(anyhow::Error::from)?;
            let (mut events, mut requests, mut failures) = (0u64, 0u64, 0u64);
            let mut next_id = (w as u64) << 40;
            while !stop.load(Ordering::Relaxed) {
                let body = support::event_batch(portal, next_id, batch);
                next_id += batch as u64;
                let started = Instant::now();
                let resp = support::signed_request(&client, &url, &secret, body)
                    .send()
                    .await;
                requests += 1;
                match resp {
                    Ok(r) if r.status() == 200 => {
                        hist.saturating_record(started.elapsed().as_micros() as u64);
                        events += batch as u64;
                    }
                    _ => failures += 1,
                }
            }
            anyhow::Ok((events, requests, failures, hist))
        }));
    }
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    let mut out = LoadResult {
        events: 0,
        requests: 0,
        failures: 0,
        latency_us: Histogram::new_with_bounds(1, 600_000_000, 3)?,
    };
    for t in tasks {
        let (e, r, f, h) = t.await??;
        out.events += e;
        out.requests += r;
        out.failures += f;
        out.latency_us.add(h)?;
    }
    Ok(out)
}

/// The bare broker ceiling: a minimal lapin publisher with confirms sending
/// one persistent ~250-byte message per event to a fresh quorum queue, with
/// up to 1,000 confirms outstanding. Returns messages per second.
pub async fn broker_ceiling(amqp_url: &str, duration: Duration) -> anyhow::Result<f64> {
    let conn = shared::broker::connect(amqp_url, "bench-ceiling").await?;
    let ch = conn.create_channel().await?;
    let queue = format!("{}bench.ceiling", support::unique_prefix());
    let mut args = FieldTable::default();
    args.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    ch.queue_declare(
        queue.as_str().into(),
        QueueDeclareOptions {
            durable: true,
            ..Default::default()
        },
        args,
    )
    .await?;
    ch.confirm_select(ConfirmSelectOptions::default()).await?;
    let event = support::event_batch(1, 1, 1);
    let started = Instant::now();
    let mut sent = 0u64;
    let mut window = std::collections::VecDeque::new();
    while started.elapsed() < duration {
        let confirm = ch
            .basic_publish(
                "".into(),
                queue.as_str().into(),
                BasicPublishOptions::default(),
                &event,
                BasicProperties::default().with_delivery_mode(2),
            )
            .await?;
        window.push_back(confirm);
        if window.len() >= 1000
            && let Some(c) = window.pop_front()
        {
            c.await?;
        }
        sent += 1;
    }
    for c in window {
        c.await?;
    }
    let rate = sent as f64 / started.elapsed().as_secs_f64();
    ch.queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
        .await?;
    let _ = conn.close(200, "done".into()).await;
    Ok(rate)
}
