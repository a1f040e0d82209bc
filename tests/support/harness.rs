//! Helpers for end-to-end tests: an in-process ingest on a random port, a
//! broker proxy that a test can cut, and queue inspection; isolated
//! settings and signed requests come from `tools::support`.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use lapin::{
    Channel,
    options::{BasicAckOptions, BasicGetOptions, QueueDeclareOptions, QueuePurgeOptions},
    types::FieldTable,
};
use shared::config::Settings;
use tokio::{net::TcpListener, sync::Notify, task::JoinHandle};
use tokio_util::sync::CancellationToken;

pub use tools::support::{
    TEST_SECRET, amqp_url, broker_channel, delete_topology, event_batch, now_ms, signed_request,
    test_settings, unique_prefix,
};

/// An ingest process running inside the test.
pub struct IngestHandle {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Fires the graceful shutdown.
    pub shutdown: CancellationToken,
    /// Finishes when ingest has stopped.
    pub task: JoinHandle<anyhow::Result<()>>,
}

impl IngestHandle {
    /// `http://127.0.0.1:port/webhooks/hubspot`.
    pub fn webhook_url(&self) -> String {
        format!("http://{}{}", self.addr, ingest::WEBHOOK_PATH)
    }

    /// `http://127.0.0.1:port`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops it and waits.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.task.await?
    }
}

/// Starts ingest with `settings` on a random port.
pub async fn spawn_ingest(settings: Settings) -> anyhow::Result<IngestHandle> {
    let listener = TcpListener::bind(settings.ingest_addr).await?;
    let addr = listener.local_addr()?;
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(ingest::run(settings, listener, shutdown.clone()));
    Ok(IngestHandle {
        addr,
        shutdown,
        task,
    })
}

/// Number of ready messages in `queue` (which must exist).
pub async fn queue_len(ch: &Channel, queue: &str) -> anyhow::Result<u32> {
    let opts = QueueDeclareOptions {
        passive: true,
        ..Default::default()
    };
    Ok(ch
        .queue_declare(queue.into(), opts, FieldTable::default())
        .await?
        .message_count())
}

/// Takes one message from `queue`, acking it.
pub async fn get_one(
    ch: &Channel,
    queue: &str,
) -> anyhow::Result<Option<lapin::message::BasicGetMessage>> {
    let msg = ch
        .basic_get(queue.into(), BasicGetOptions::default())
        .await?;
    if let Some(m) = &msg {
        m.delivery.ack(BasicAckOptions::default()).await?;
    }
    Ok(msg)
}

/// Empties `queue`.
pub async fn purge(ch: &Channel, queue: &str) -> anyhow::Result<()> {
    ch.queue_purge(queue.into(), QueuePurgeOptions::default())
        .await?;
    Ok(())
}

/// A TCP proxy in front of a service, which a test can cut (every open
/// connection dropped, new ones refused), stall (connections stay open but
/// no byte moves: a hung broker) and restore, to simulate outages without
/// touching the shared service.
#[derive(Clone)]
pub struct TcpProxy {
    /// Where clients connect.
    pub addr: SocketAddr,
    up: Arc<AtomicBool>,
    stalled: Arc<AtomicBool>,
    cut: Arc<Notify>,
}

impl TcpProxy {
    /// Starts a proxy to `target`.
    pub async fn start(target: SocketAddr) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let proxy = Self {
            addr: listener.local_addr()?,
            up: Arc::new(AtomicBool::new(true)),
            stalled: Arc::new(AtomicBool::new(false)),
            cut: Arc::new(Notify::new()),
        };
        let p = proxy.clone();
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                if !p.up.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let (cut, stalled) = (p.cut.clone(), p.stalled.clone());
                tokio::spawn(async move {
                    let Ok(outbound) = tokio::net::TcpStream::connect(target).await else {
                        return;
                    };
                    let (in_r, in_w) = inbound.into_split();
                    let (out_r, out_w) = outbound.into_split();
                    tokio::select! {
                        () = pump(in_r, out_w, stalled.clone()) => {}
                        () = pump(out_r, in_w, stalled) => {}
                        () = cut.notified() => {}
                    }
                });
            }
        });
        Ok(proxy)
    }

    /// Drops every connection and refuses new ones.
    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.cut.notify_waiters();
    }

    /// Keeps connections open (and accepts new ones) but forwards nothing.
    pub fn stall(&self) {
        self.stalled.store(true, Ordering::SeqCst);
    }

    /// Accepts and forwards again.
    pub fn restore(&self) {
        self.stalled.store(false, Ordering::SeqCst);
        self.up.store(true, Ordering::SeqCst);
    }

    /// An AMQP URL pointing at this proxy.
    pub fn amqp_url(&self) -> String {
        format!("amqp://guest:guest@{}/%2f", self.addr)
    }
}

/// Copies bytes one way, holding them while `stalled` is set.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    stalled: Arc<AtomicBool>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        while stalled.load(Ordering::SeqCst) {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        while stalled.load(Ordering::SeqCst) {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
