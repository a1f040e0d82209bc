//! Building blocks of the benchmarks: child processes, load generators,
//! the broker ceiling and resource readings.

use std::{
    process::Stdio,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use hdrhistogram::Histogram;
use lapin::{
    BasicProperties,
    options::{BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions, QueueDeleteOptions},
    types::{AMQPValue, FieldTable},
};
use secrecy::ExposeSecret;
use shared::config::Settings;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::harness;

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

/// Run by the benchmark's own executable with `--serve-ingest`: ingest in a
/// process of its own (so its memory is measured alone), configured from the
/// environment, printing `LISTENING <addr>` once bound.
pub async fn serve_ingest_child() -> anyhow::Result<()> {
    let settings = Settings::load()?;
    shared::telemetry::init_logging(settings.log_format, &settings.log);
    let listener = tokio::net::TcpListener::bind(settings.ingest_addr).await?;
    println!("LISTENING {}", listener.local_addr()?);
    let shutdown = tokio_util::sync::CancellationToken::new();
    let s = shutdown.clone();
    tokio::spawn(async move {
        // The parent closes our stdin to stop us.
        let mut line = String::new();
        let _ = BufReader::new(tokio::io::stdin())
            .read_line(&mut line)
            .await;
        s.cancel();
    });
    ingest::run(settings, listener, shutdown).await
}

/// Ingest running as a child process.
pub struct IngestChild {
    child: tokio::process::Child,
    addr: String,
}

impl IngestChild {
    /// Starts the current executable with `--serve-ingest` and `settings` as environment.
    pub async fn spawn(settings: &Settings) -> anyhow::Result<Self> {
        let secret = settings
            .hubspot_client_secret
            .as_ref()
            .map(|s| s.expose_secret().to_owned())
            .unwrap_or_default();
        let mut child = tokio::process::Command::new(std::env::current_exe()?)
            .arg("--serve-ingest")
            .env("CONNECTOR_AMQP_URL", &settings.amqp_url)
            .env("CONNECTOR_QUEUE_PREFIX", &settings.queue_prefix)
            .env("CONNECTOR_HUBSPOT_CLIENT_SECRET", secret)
            .env("CONNECTOR_INGEST_ADDR", "127.0.0.1:0")
            .env("CONNECTOR_LOG", &settings.log)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow::anyhow!("no stdout"))?;
        let mut lines = BufReader::new(stdout).lines();
        let addr = loop {
            match lines.next_line().await? {
                Some(l) if l.starts_with("LISTENING ") => break l["LISTENING ".len()..].to_owned(),
                Some(_) => continue,
                None => anyhow::bail!("ingest child exited before listening"),
            }
        };
        let client = reqwest::Client::new();
        for _ in 0..100 {
            if client
                .get(format!("http://{addr}/readyz"))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(Self { child, addr })
    }

    /// The webhook URL.
    pub fn webhook_url(&self) -> String {
        format!("http://{}{}", self.addr, ingest::WEBHOOK_PATH)
    }

    /// Peak RSS so far, in KiB.
    pub fn peak_rss_kb(&self) -> u64 {
        self.child.id().map_or(0, peak_rss_kb)
    }

    /// Asks for a graceful stop and waits.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        drop(self.child.stdin.take());
        tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await??;
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

/// Sends signed batches of `batch` events with `concurrency` requests in
/// flight for `duration`.
pub async fn drive_webhooks(
    url: &str,
    secret: &str,
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
        let (client, url, secret, stop) = (
            client.clone(),
            url.to_owned(),
            secret.to_owned(),
            stop.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut hist =
                Histogram::<u64>::new_with_bounds(1, 600_000_000, 3).expect("valid bounds");
            let (mut events, mut requests, mut failures) = (0u64, 0u64, 0u64);
            let mut next_id = (w as u64) << 40;
            while !stop.load(Ordering::Relaxed) {
                let body = harness::event_batch(1000 + w as u64, next_id, batch);
                next_id += batch as u64;
                let started = Instant::now();
                let resp = harness::signed_request(&client, &url, &secret, body)
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
            (events, requests, failures, hist)
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
        let (e, r, f, h) = t.await?;
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
    let queue = format!("{}bench.ceiling", harness::unique_prefix());
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
    let event = harness::event_batch(1, 1, 1);
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

/// Deletes a benchmark's queues.
pub async fn drop_topology(settings: &Settings) -> anyhow::Result<()> {
    let (conn, ch) = harness::broker_channel().await?;
    harness::delete_topology(&ch, settings).await?;
    let _ = conn.close(200, "done".into()).await;
    Ok(())
}

pub mod pipeline;

/// Memory of the services a benchmark uses but does not start (RabbitMQ,
/// PostgreSQL), sampled from `/proc` on a thread of its own:
/// their processes outlive the run, so their own high-water marks would not
/// be the run's. The services are the processes listening on the settings'
/// AMQP and PostgreSQL ports (and, for PostgreSQL, that postmaster's
/// children: one backend per connection, and its helpers). Finding them
/// needs the right to read their `/proc/<pid>/fd` (root, or the services'
/// own user); otherwise the readings are `None`.
pub struct ServiceRss {
    stop: Arc<AtomicBool>,
    sampler: Option<std::thread::JoinHandle<ServiceReadings>>,
    done: Option<ServiceReadings>,
}

/// Memory in KiB; `None`: the process was not found or not readable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServicePeaks {
    /// RabbitMQ: the resident set of the broker's Erlang VM.
    pub rabbitmq_kb: Option<u64>,
    /// PostgreSQL: the proportional set size (`Pss`: shared pages divided
    /// among the processes sharing them) of the postmaster and each of its
    /// children, summed.
    pub postgres_kb: Option<u64>,
}

/// The first reading (the services at rest, or holding what earlier runs
/// left them) and the highest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServiceReadings {
    /// When sampling started.
    pub start: ServicePeaks,
    /// The highest of each.
    pub peak: ServicePeaks,
}

impl ServiceRss {
    /// Starts sampling the broker listening on `amqp_port` and the
    /// PostgreSQL server listening on `pg_port`.
    pub fn start(amqp_port: u16, pg_port: u16) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let sampler = std::thread::spawn(move || {
            let (broker, postmaster) = (listener_pid(amqp_port), listener_pid(pg_port));
            let start = sample_services(broker, postmaster);
            let mut peak = start;
            // PostgreSQL's PSS walks every backend's page tables (~20 ms a
            // reading with a worker's 48 connections): read every 5 s and
            // once more at the end, when its connections hold the most;
            // RabbitMQ's resident set every 250 ms.
            for tick in 1u64.. {
                let last = flag.load(Ordering::Relaxed);
                if last || tick % 20 == 0 {
                    peak.postgres_kb = peak.postgres_kb.max(postgres_pss_kb(postmaster));
                }
                peak.rabbitmq_kb = peak.rabbitmq_kb.max(rabbitmq_rss_kb(broker));
                if last {
                    break;
                }
                std::thread::sleep(Duration::from_millis(250));
            }
            ServiceReadings { start, peak }
        });
        Self {
            stop,
            sampler: Some(sampler),
            done: None,
        }
    }

    /// For these settings' broker and database.
    pub fn for_settings(settings: &Settings) -> Self {
        let (amqp, pg) = service_ports(settings);
        Self::start(amqp, pg)
    }

    /// The readings; sampling stops at the first call.
    pub fn finish(&mut self) -> ServiceReadings {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.sampler.take() {
            self.done = Some(t.join().unwrap_or_default());
        }
        self.done.unwrap_or_default()
    }
}

impl Drop for ServiceRss {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The settings' AMQP and PostgreSQL ports.
pub fn service_ports(settings: &Settings) -> (u16, u16) {
    let port = |url: &str, default: u16| {
        reqwest::Url::parse(url)
            .ok()
            .and_then(|u| u.port())
            .unwrap_or(default)
    };
    (
        port(&settings.amqp_url, 5672),
        port(&settings.database_url, 5432),
    )
}

/// The process listening on TCP `port` (any address), from
/// `/proc/net/tcp{,6}` and the processes' open sockets.
pub fn listener_pid(port: u16) -> Option<u32> {
    let hex_port = format!(":{port:04X}");
    let mut inodes = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            // local_address, state (0A: LISTEN), inode.
            if cols.len() > 9 && cols[1].ends_with(&hex_port) && cols[3] == "0A" {
                inodes.push(format!("socket:[{}]", cols[9]));
            }
        }
    }
    if inodes.is_empty() {
        return None;
    }
    for (pid, _) in processes() {
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if let Ok(target) = std::fs::read_link(fd.path())
                && inodes.iter().any(|i| target.as_os_str() == i.as_str())
            {
                return Some(pid);
            }
        }
    }
    None
}

/// Every process's id and `status` text.
fn processes() -> impl Iterator<Item = (u32, String)> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            let status = std::fs::read_to_string(e.path().join("status")).ok()?;
            Some((pid, status))
        })
}

/// A `Key:   123 kB` line's number.
fn field_kb(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

/// One reading of the broker's and the PostgreSQL server's memory.
pub fn sample_services(broker: Option<u32>, postmaster: Option<u32>) -> ServicePeaks {
    ServicePeaks {
        rabbitmq_kb: rabbitmq_rss_kb(broker),
        postgres_kb: postgres_pss_kb(postmaster),
    }
}

/// The broker's resident set.
fn rabbitmq_rss_kb(broker: Option<u32>) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{}/status", broker?)).ok()?;
    field_kb(&status, "VmRSS:")
}

/// The summed PSS of the postmaster and its children.
fn postgres_pss_kb(postmaster: Option<u32>) -> Option<u64> {
    let pm = postmaster?;
    let mut total: Option<u64> = None;
    for (pid, status) in processes() {
        if pid != pm && field_kb(&status, "PPid:") != Some(u64::from(pm)) {
            continue;
        }
        let pss = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
            .ok()
            .and_then(|r| field_kb(&r, "Pss:"));
        if let Some(kb) = pss {
            *total.get_or_insert(0) += kb;
        }
    }
    total
}

#[cfg(test)]
mod service_tests {
    use super::*;

    #[test]
    fn the_broker_and_the_database_of_this_machine_are_found_and_measured() {
        // CI and every session's machine run both (`.ci/run` starts them).
        let (amqp, pg) = service_ports(&crate::harness::test_settings());
        let (broker, postmaster) = (listener_pid(amqp), listener_pid(pg));
        if std::fs::read_dir("/proc/1/fd").is_err() {
            // Not root: other users' sockets cannot be matched to processes.
            eprintln!("not permitted to read other processes' fds: skipped");
            return;
        }
        assert!(broker.is_some() && postmaster.is_some());
        let now = sample_services(broker, postmaster);
        assert!(now.rabbitmq_kb.is_some_and(|kb| kb > 10 * 1024), "{now:?}");
        assert!(now.postgres_kb.is_some_and(|kb| kb > 1024), "{now:?}");
        assert_eq!(listener_pid(1), None, "nothing listens on port 1");
        let mut rss = ServiceRss::start(amqp, pg);
        let first = rss.finish();
        assert!(first.peak.rabbitmq_kb >= first.start.rabbitmq_kb);
        assert!(first.start.postgres_kb.is_some());
        assert_eq!(rss.finish(), first, "finish can be called again");
    }
}
