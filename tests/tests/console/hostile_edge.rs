//! The hostile catalogue at the edge: attacks on ingest's listener rather
//! than on what a request says. Thousands of idle and dripping
//! connections (slowloris), connections past the cap, bodies dripped
//! slower than the body timeout, requests that outlive their deadline,
//! and requests and webhook bytes past their caps. Valid signed webhooks
//! stay answered (or are answered 503 with `Retry-After`, which HubSpot
//! retries), and the process's memory stays bounded.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::Context as _;
use domain::signature;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    task::JoinSet,
};
use tokio_util::sync::CancellationToken;

use crate::support::harness::{self, IngestHandle, TEST_SECRET};

/// Raises this process's soft file-descriptor limit to `wanted` (or the
/// hard limit); child processes inherit it.
fn raise_fd_limit(wanted: u64) {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let l = getrlimit(Resource::Nofile);
    if l.current.is_some_and(|c| c < wanted) {
        let raised = l.maximum.map_or(wanted, |m| m.min(wanted));
        let _ = setrlimit(
            Resource::Nofile,
            Rlimit {
                current: Some(raised),
                maximum: l.maximum,
            },
        );
    }
}

/// One valid signed webhook on a new connection: its status and latency.
async fn send_valid(url: &str, id: u64) -> anyhow::Result<(u16, Duration)> {
    // A new connection each time, as HubSpot's deliveries must get one.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(30))
        .build()?;
    let body = harness::event_batch(1001, id, 1);
    let started = Instant::now();
    let r = harness::signed_request(&client, url, TEST_SECRET, body)
        .send()
        .await?;
    Ok((r.status().as_u16(), started.elapsed()))
}

/// The head of a webhook POST signed (v3, now) over `body`, declaring
/// `len` bytes (`None`: chunked).
fn signed_head(addr: SocketAddr, body: &[u8], len: Option<usize>) -> Vec<u8> {
    let path = ingest::WEBHOOK_PATH;
    let ts = harness::now_ms().to_string();
    let url = format!("http://{addr}{path}");
    let sig = signature::sign_v3(TEST_SECRET.as_bytes(), "POST", &url, body, &ts);
    let framing = match len {
        Some(n) => format!("content-length: {n}"),
        None => "transfer-encoding: chunked".into(),
    };
    format!(
        "POST {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n\
         x-hubspot-signature-v3: {sig}\r\nx-hubspot-request-timestamp: {ts}\r\n{framing}\r\n\r\n"
    )
    .into_bytes()
}

/// An answer read off a raw connection.
#[derive(Debug)]
struct Answer {
    status: u16,
    head: String,
    body: String,
}

/// Reads one answer from `s` within `within`.
async fn answer(s: &mut TcpStream, within: Duration) -> anyhow::Result<Answer> {
    let deadline = tokio::time::Instant::now() + within;
    let mut buf = Vec::new();
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                let status = head
                    .split_whitespace()
                    .nth(1)
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(0);
                let body = String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).into_owned();
                return Ok(Answer { status, head, body });
            }
        }
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout_at(deadline, s.read(&mut chunk))
            .await
            .context("no answer in time")??;
        anyhow::ensure!(
            n > 0,
            "closed without an answer: {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// In-process ingest with `edit` applied to its test settings, ready.
async fn ingest_with(
    edit: impl FnOnce(&mut shared::config::Settings),
) -> anyhow::Result<(IngestHandle, shared::config::Settings)> {
    let mut settings = harness::test_settings();
    edit(&mut settings);
    let ingest = harness::spawn_ingest(settings.clone()).await?;
    let client = reqwest::Client::new();
    for _ in 0..200 {
        let ready = client
            .get(format!("{}/readyz", ingest.base_url()))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200);
        if ready {
            return Ok((ingest, settings));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::bail!("ingest not ready")
}

async fn finish(ingest: IngestHandle, settings: &shared::config::Settings) -> anyhow::Result<()> {
    ingest.stop().await?;
    let (_conn, ch) = harness::broker_channel().await?;
    harness::delete_topology(&ch, settings).await
}

/// A slowloris: connections that stay idle or drip a header byte a second,
/// reconnecting whenever ingest closes them (as an attacker would).
struct Attack {
    stop: CancellationToken,
    tasks: JoinSet<()>,
    stats: Arc<AttackStats>,
}

#[derive(Default)]
struct AttackStats {
    open: AtomicU64,
    connects: AtomicU64,
    /// Connections ingest closed.
    cut: AtomicU64,
    /// The longest a connection lived before ingest closed it, in ms.
    longest_ms: AtomicU64,
}

impl Attack {
    fn start(addr: SocketAddr, connections: usize) -> Self {
        let stop = CancellationToken::new();
        let stats = Arc::new(AttackStats::default());
        let mut tasks = JoinSet::new();
        for i in 0..connections {
            let (stop, stats) = (stop.clone(), stats.clone());
            let drip = i % 2 == 1;
            // Spread the first connects over a second (the listen backlog).
            let delay = Duration::from_millis((i % 50) as u64 * 20);
            tasks.spawn(async move {
                tokio::time::sleep(delay).await;
                while !stop.is_cancelled() {
                    let Ok(s) = TcpStream::connect(addr).await else {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    };
                    stats.connects.fetch_add(1, Ordering::Relaxed);
                    stats.open.fetch_add(1, Ordering::Relaxed);
                    let started = Instant::now();
                    let cut = hold(s, drip, &stop).await;
                    stats.open.fetch_sub(1, Ordering::Relaxed);
                    if cut {
                        stats.cut.fetch_add(1, Ordering::Relaxed);
                        let ms = started.elapsed().as_millis() as u64;
                        stats.longest_ms.fetch_max(ms, Ordering::Relaxed);
                    }
                }
            });
        }
        Self { stop, tasks, stats }
    }

    async fn stop(mut self) -> Arc<AttackStats> {
        self.stop.cancel();
        while self.tasks.join_next().await.is_some() {}
        self.stats
    }
}

/// Holds one connection until ingest closes it (true) or the attack stops.
async fn hold(mut s: TcpStream, drip: bool, stop: &CancellationToken) -> bool {
    let mut sink = [0u8; 256];
    if drip
        && s.write_all(b"POST /webhooks/hubspot HTTP/1.1\r\nHost: x\r\nX-Drip: ")
            .await
            .is_err()
    {
        return true;
    }
    loop {
        tokio::select! {
            // Ingest closed it (or answered: it never completes a request).
            _ = s.read(&mut sink) => return true,
            () = tokio::time::sleep(Duration::from_secs(1)), if drip => {
                if s.write_all(b"a").await.is_err() {
                    return true;
                }
            }
            () = stop.cancelled() => return false,
        }
    }
}

/// File descriptors `pid` holds (its connections, mostly).
fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

const ATTACKERS: usize = 2000;
const HEADER_TIMEOUT_SECS: u64 = 4;

/// The figures asked for: connections held, latency of valid webhooks
/// under attack, and ingest's RSS before, during and after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_idle_and_dripping_connections_leave_valid_webhooks_answered()
-> anyhow::Result<()> {
    raise_fd_limit(4 * ATTACKERS as u64 + 1024);
    let bins = tools::binaries::Binaries::ensure(&["ingest"])?;
    let settings = harness::test_settings();
    let env = [(
        "CONNECTOR_HTTP_HEADER_TIMEOUT_SECS",
        HEADER_TIMEOUT_SECS.to_string(),
    )];
    let ingest = tools::bench::IngestChild::spawn_with(&bins, &settings, &env).await?;
    let pid = ingest.pid().context("ingest's pid")?;
    let url = ingest.webhook_url();
    let addr: SocketAddr = ingest.addr().parse()?;
    let mut id = 0;
    let mut quiet = Vec::new();
    for _ in 0..10 {
        id += 1;
        quiet.push(send_valid(&url, id).await?);
    }
    let rss_before = ingest.rss_kb();

    let attack = Attack::start(addr, ATTACKERS);
    let ramp = Instant::now();
    while fds(pid) < ATTACKERS * 9 / 10 && ramp.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (mut held_peak, mut rss_peak) = (fds(pid), ingest.rss_kb());
    let mut during = Vec::new();
    let until = Instant::now() + Duration::from_secs(3 * HEADER_TIMEOUT_SECS);
    while Instant::now() < until {
        id += 1;
        during.push(send_valid(&url, id).await?);
        held_peak = held_peak.max(fds(pid));
        rss_peak = rss_peak.max(ingest.rss_kb());
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let stats = attack.stop().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (held_after, rss_after) = (fds(pid), ingest.rss_kb());
    let after = send_valid(&url, id + 1).await?;

    let max = |v: &[(u16, Duration)]| v.iter().map(|(_, d)| *d).max().unwrap_or_default();
    let median = |v: &[(u16, Duration)]| {
        let mut d: Vec<_> = v.iter().map(|(_, d)| *d).collect();
        d.sort();
        d[d.len() / 2]
    };
    println!(
        "EDGE-FIGURES attackers={ATTACKERS} header_timeout_s={HEADER_TIMEOUT_SECS} \
         fds_held_peak={held_peak} fds_after={held_after} attack_connects={} cut_by_ingest={} \
         longest_attack_connection_ms={} valid_quiet_median_ms={} valid_quiet_max_ms={} \
         valid_under_attack={} median_ms={} max_ms={} rss_kb_before={rss_before} \
         rss_kb_peak={rss_peak} rss_kb_after={rss_after}",
        stats.connects.load(Ordering::Relaxed),
        stats.cut.load(Ordering::Relaxed),
        stats.longest_ms.load(Ordering::Relaxed),
        median(&quiet).as_millis(),
        max(&quiet).as_millis(),
        during.len(),
        median(&during).as_millis(),
        max(&during).as_millis(),
    );
    assert!(quiet.iter().all(|(s, _)| *s == 200), "{quiet:?}");
    assert!(
        held_peak >= ATTACKERS * 9 / 10,
        "the attack reached ingest: {held_peak} descriptors held"
    );
    for (status, took) in &during {
        assert_eq!(*status, 200, "a valid webhook under attack: {during:?}");
        assert!(
            *took < Duration::from_secs(3),
            "answered within a few seconds under attack: {during:?}"
        );
    }
    // Every attacking connection is closed by the header timeout, over and over.
    assert!(
        stats.cut.load(Ordering::Relaxed) >= ATTACKERS as u64,
        "ingest cut the attack"
    );
    assert!(
        stats.longest_ms.load(Ordering::Relaxed) < 2 * HEADER_TIMEOUT_SECS * 1000 + 2000,
        "no attacking connection outlived the header timeout by much"
    );
    assert!(
        rss_peak < rss_before + 256 * 1024,
        "memory bounded under attack: {rss_before} KiB, then {rss_peak} KiB"
    );
    assert!(held_after < 100, "connections released: {held_after}");
    assert_eq!(after.0, 200);
    ingest.stop().await?;
    let (_conn, ch) = harness::broker_channel().await?;
    harness::delete_topology(&ch, &settings).await
}

/// Past `CONNECTOR_HTTP_MAX_CONNECTIONS`, a new connection waits to be
/// accepted (it is not refused) and is answered once the header timeout
/// frees a place.
#[tokio::test(flavor = "multi_thread")]
async fn past_the_connection_cap_a_webhook_waits_and_is_answered() -> anyhow::Result<()> {
    let (ingest, settings) = ingest_with(|s| {
        s.edge.http_max_connections = 32;
        s.edge.http_header_timeout_secs = 2;
    })
    .await?;
    // Let the readiness probe's connection go (idle: closed in 2 s).
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let mut idle = Vec::new();
    for _ in 0..32 {
        idle.push(TcpStream::connect(ingest.addr).await?);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (status, took) = send_valid(&ingest.webhook_url(), 1).await?;
    println!("past the connection cap: answered {status} after {took:?}");
    assert_eq!(status, 200);
    assert!(
        took >= Duration::from_millis(1000),
        "it waited for a place: {took:?}"
    );
    assert!(
        took < Duration::from_secs(8),
        "then it was answered: {took:?}"
    );
    for mut s in idle {
        let mut b = [0u8; 16];
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut b)).await??;
        assert_eq!(n, 0, "the idle connections were closed by ingest");
    }
    finish(ingest, &settings).await
}

/// A body that stops arriving for longer than the body timeout is cut
/// off with 408; one that drips just fast enough meets the request
/// deadline instead (503 with `Retry-After`). Nothing is enqueued.
#[tokio::test(flavor = "multi_thread")]
async fn a_body_dripping_slower_than_the_body_timeout_is_cut_off() -> anyhow::Result<()> {
    let (ingest, settings) = ingest_with(|s| {
        s.edge.http_body_timeout_secs = 1;
        s.edge.http_request_timeout_secs = 4;
    })
    .await?;
    let body = harness::event_batch(1001, 1, 1);

    let mut s = TcpStream::connect(ingest.addr).await?;
    s.write_all(&signed_head(ingest.addr, &body, Some(body.len())))
        .await?;
    s.write_all(&body[..10]).await?;
    let started = Instant::now();
    let a = answer(&mut s, Duration::from_secs(10)).await?;
    println!("body stalled: {} after {:?}", a.status, started.elapsed());
    assert_eq!(a.status, 408, "{a:?}");
    assert!(a.body.contains("\"body_timeout\""), "{a:?}");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "cut at the body timeout"
    );

    // One byte every 600 ms: never a gap of 1 s, but past the 4 s deadline.
    let mut s = TcpStream::connect(ingest.addr).await?;
    s.write_all(&signed_head(ingest.addr, &body, Some(body.len())))
        .await?;
    let started = Instant::now();
    let (mut r, mut w) = s.into_split();
    let drip = tokio::spawn(async move {
        for b in body {
            if w.write_all(&[b]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(600)).await;
        }
    });
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(15), r.read_to_end(&mut out)).await;
    drip.abort();
    let text = String::from_utf8_lossy(&out);
    println!("body dripped: after {:?}: {text:.120}", started.elapsed());
    assert!(text.starts_with("HTTP/1.1 503"), "{text}");
    assert!(text.to_lowercase().contains("retry-after:"), "{text}");
    assert!(text.contains("\"request_timeout\""), "{text}");

    let (_conn, ch) = harness::broker_channel().await?;
    let work = worker::topology(&settings)?.work_queue();
    assert_eq!(harness::queue_len(&ch, &work).await?, 0, "nothing enqueued");
    finish(ingest, &settings).await
}

/// Webhook bytes past `CONNECTOR_MAX_BODY_BYTES_IN_FLIGHT`: 503 with
/// `Retry-After` before the body is read (a declared length that does not
/// fit) or as it arrives (chunked); what fits is still taken, and the
/// budget comes back when the bytes are let go.
#[tokio::test(flavor = "multi_thread")]
async fn too_many_webhook_bytes_in_hand_answer_503_with_retry_after() -> anyhow::Result<()> {
    let (ingest, settings) = ingest_with(|s| {
        s.max_body_bytes = 100_000;
        s.edge.max_body_bytes_in_flight = 150_000;
    })
    .await?;
    let addr = ingest.addr;
    // Holds 90,000 bytes of a body it never finishes.
    let mut holder = TcpStream::connect(addr).await?;
    holder
        .write_all(&signed_head(addr, b"[]", Some(100_000)))
        .await?;
    holder.write_all(&vec![b' '; 90_000]).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let mut s = TcpStream::connect(addr).await?;
    s.write_all(&signed_head(addr, b"[]", Some(100_000)))
        .await?;
    let a = answer(&mut s, Duration::from_secs(5)).await?;
    assert_eq!(a.status, 503, "a declared length over what is left: {a:?}");
    assert!(a.head.contains("retry-after:"), "{a:?}");
    assert!(a.body.contains("\"overloaded\""), "{a:?}");

    let mut s = TcpStream::connect(addr).await?;
    s.write_all(&signed_head(addr, b"[]", None)).await?;
    for _ in 0..7 {
        let chunk = format!("2710\r\n{}\r\n", " ".repeat(10_000));
        if s.write_all(chunk.as_bytes()).await.is_err() {
            break;
        }
    }
    let a = answer(&mut s, Duration::from_secs(5)).await?;
    assert_eq!(a.status, 503, "chunked past the budget: {a:?}");
    assert!(a.head.contains("retry-after:"), "{a:?}");

    let (status, _) = send_valid(&ingest.webhook_url(), 1).await?;
    assert_eq!(status, 200, "a webhook that fits is still taken");
    drop(holder);
    tokio::time::sleep(Duration::from_millis(500)).await;
    // A 95,000-byte delivery fits again once the held bytes are let go.
    let mut big = harness::event_batch(1001, 2, 1);
    big.pop();
    big.extend(std::iter::repeat_n(b' ', 95_000 - big.len() - 1));
    big.push(b']');
    let client = reqwest::Client::new();
    let r = harness::signed_request(&client, &ingest.webhook_url(), TEST_SECRET, big)
        .send()
        .await?;
    assert_eq!(r.status(), 200, "{}", r.text().await?);
    finish(ingest, &settings).await
}

/// Requests past `CONNECTOR_HTTP_MAX_REQUESTS` at once: 503 with
/// `Retry-After` at once; taken again when the others end.
#[tokio::test(flavor = "multi_thread")]
async fn too_many_requests_at_once_answer_503_with_retry_after() -> anyhow::Result<()> {
    let (ingest, settings) = ingest_with(|s| s.edge.http_max_requests = 2).await?;
    let addr = ingest.addr;
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(addr).await?;
        s.write_all(&signed_head(addr, b"[]", Some(1000))).await?;
        s.write_all(b"[").await?;
        held.push(s);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let client = reqwest::Client::new();
    let body = harness::event_batch(1001, 1, 1);
    let r = harness::signed_request(&client, &ingest.webhook_url(), TEST_SECRET, body.clone())
        .send()
        .await?;
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    let j: serde_json::Value = r.json().await?;
    assert_eq!(j["error"], "overloaded", "{j}");
    drop(held);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = harness::signed_request(&client, &ingest.webhook_url(), TEST_SECRET, body)
        .send()
        .await?;
    assert_eq!(r.status(), 200);
    finish(ingest, &settings).await
}
