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
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
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

/// Peak memory of the services a benchmark uses but does not start
/// (RabbitMQ, PostgreSQL), sampled from `/proc` every 250 ms on a thread of
/// its own: their processes outlive the run, so their own high-water marks
/// would not be the run's. The services are the processes listening on the
/// settings' AMQP and PostgreSQL ports (and, for PostgreSQL, that
/// postmaster's children: one backend per connection, and its helpers).
pub struct ServiceRss {
    stop: Arc<AtomicBool>,
    sampler: Option<std::thread::JoinHandle<ServicePeaks>>,
}

/// What [`ServiceRss`] saw, in KiB; `None`: the process was not found or
/// not readable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServicePeaks {
    /// RabbitMQ: the resident set of the broker's Erlang VM.
    pub rabbitmq_kb: Option<u64>,
    /// PostgreSQL: the private memory (`RssAnon`) of the postmaster and of
    /// each of its children, plus the shared parts counted once (the
    /// largest `RssShmem`: the shared buffers touched; the largest
    /// `RssFile`: its code).
    pub postgres_kb: Option<u64>,
}

impl ServiceRss {
    /// Starts sampling the broker listening on `amqp_port` and the
    /// PostgreSQL server listening on `pg_port`.
    pub fn start(amqp_port: u16, pg_port: u16) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let sampler = std::thread::spawn(move || {
            let (broker, postmaster) = (listener_pid(amqp_port), listener_pid(pg_port));
            let mut peaks = ServicePeaks::default();
            loop {
                let now = sample_services(broker, postmaster);
                peaks.rabbitmq_kb = peaks.rabbitmq_kb.max(now.rabbitmq_kb);
                peaks.postgres_kb = peaks.postgres_kb.max(now.postgres_kb);
                if flag.load(Ordering::Relaxed) {
                    return peaks;
                }
                std::thread::sleep(Duration::from_millis(250));
            }
        });
        Self {
            stop,
            sampler: Some(sampler),
        }
    }

    /// For these settings' broker and database.
    pub fn for_settings(settings: &Settings) -> Self {
        let (amqp, pg) = service_ports(settings);
        Self::start(amqp, pg)
    }

    /// The peaks so far; sampling stops.
    pub fn finish(&mut self) -> ServicePeaks {
        self.stop.store(true, Ordering::Relaxed);
        self.sampler
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default()
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

fn status_kb(status: &str, key: &str) -> u64 {
    status
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// One reading of the broker's and the PostgreSQL server's memory.
pub fn sample_services(broker: Option<u32>, postmaster: Option<u32>) -> ServicePeaks {
    let rabbitmq_kb = broker.and_then(|pid| {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        Some(status_kb(&status, "VmRSS:"))
    });
    let postgres_kb = postmaster.and_then(|pm| {
        let (mut anon, mut shmem, mut file, mut seen) = (0u64, 0u64, 0u64, false);
        for (pid, status) in processes() {
            let parent = status_kb(&status, "PPid:");
            if pid != pm && parent != u64::from(pm) {
                continue;
            }
            seen = true;
            anon += status_kb(&status, "RssAnon:");
            shmem = shmem.max(status_kb(&status, "RssShmem:"));
            file = file.max(status_kb(&status, "RssFile:"));
        }
        seen.then_some(anon + shmem + file)
    });
    ServicePeaks {
        rabbitmq_kb,
        postgres_kb,
    }
}

#[cfg(test)]
mod service_tests {
    use super::*;

    #[test]
    fn the_broker_and_the_database_of_this_machine_are_found_and_measured() {
        // CI and every session's machine run both (`.ci/run` starts them).
        let (amqp, pg) = service_ports(&crate::harness::test_settings());
        let (broker, postmaster) = (listener_pid(amqp), listener_pid(pg));
        assert!(broker.is_some() && postmaster.is_some());
        let now = sample_services(broker, postmaster);
        assert!(now.rabbitmq_kb.is_some_and(|kb| kb > 10 * 1024), "{now:?}");
        assert!(now.postgres_kb.is_some_and(|kb| kb > 1024), "{now:?}");
        assert_eq!(listener_pid(1), None, "nothing listens on port 1");
        let peaks = ServiceRss::start(amqp, pg).finish();
        assert!(peaks.rabbitmq_kb.is_some() && peaks.postgres_kb.is_some());
    }
}
