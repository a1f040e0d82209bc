//! A publisher that waits for broker confirms and reconnects by itself.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use futures::future::try_join_all;
use lapin::{
    BasicProperties, Channel, Connection,
    options::{BasicPublishOptions, ConfirmSelectOptions},
    types::FieldTable,
};
use tokio::sync::{Mutex, RwLock};
use tokio_util::sync::CancellationToken;

use super::{BrokerNodes, NODE_CONNECT_TIMEOUT, Topology};

/// Longest wait for a connection once a node answered (topology, confirm
/// mode); each node that does not answer adds [`NODE_CONNECT_TIMEOUT`].
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// One message to publish.
#[derive(Debug, Clone)]
pub struct OutgoingMessage<'a> {
    /// Exchange (`""` for the default exchange).
    pub exchange: &'a str,
    /// Routing key (the queue name on the default exchange).
    pub routing_key: &'a str,
    /// Body bytes.
    pub body: &'a [u8],
    /// Application headers.
    pub headers: FieldTable,
    /// Unique id of the message.
    pub message_id: String,
}

/// Why messages were not confirmed. Nothing is partially acknowledged to the
/// caller: any error means "retry the whole request".
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// No connection to the broker (it is down or refusing us).
    #[error("broker unavailable: {0}")]
    Unavailable(String),
    /// The broker did not confirm in time.
    #[error("broker did not confirm within {0:?}")]
    Timeout(Duration),
    /// The broker refused a message (nack) or could not route it.
    #[error("broker refused the message: {0}")]
    Refused(String),
}

struct Live {
    conn: Connection,
    channels: Vec<Channel>,
    next: AtomicUsize,
}

impl Live {
    fn healthy(&self) -> bool {
        self.conn.status().connected() && self.channels.iter().all(|c| c.status().connected())
    }

    fn channel(&self) -> &Channel {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.channels.len();
        &self.channels[i]
    }
}

struct Inner {
    /// The nodes, or why `CONNECTOR_AMQP_URL` names none.
    nodes: Result<BrokerNodes, String>,
    name: String,
    topology: Topology,
    channel_count: usize,
    live: RwLock<Option<Arc<Live>>>,
    /// Serialises reconnection attempts so a burst of requests opens one connection.
    connecting: Mutex<()>,
}

/// Publishes persistent messages and waits for the broker's confirms.
/// Cloning is cheap; clones share the connection.
#[derive(Clone)]
pub struct Publisher {
    inner: Arc<Inner>,
}

impl Publisher {
    /// A publisher that connects lazily (first publish, [`Publisher::connect`]
    /// or the supervisor) and declares `topology` on every (re)connection.
    /// `urls` is one AMQP URL or the nodes of a cluster separated by commas:
    /// a lost connection is replaced by one to the next live node.
    pub fn new(urls: &str, name: &str, topology: Topology, channel_count: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                nodes: BrokerNodes::parse(urls),
                name: name.to_owned(),
                topology,
                channel_count: channel_count.max(1),
                live: RwLock::new(None),
                connecting: Mutex::new(()),
            }),
        }
    }

    /// The topology this publisher declares.
    pub fn topology(&self) -> &Topology {
        &self.inner.topology
    }

    /// True when a healthy connection is open.
    pub async fn is_ready(&self) -> bool {
        self.inner
            .live
            .read()
            .await
            .as_ref()
            .is_some_and(|l| l.healthy())
    }

    /// Connects now if not connected.
    pub async fn connect(&self) -> Result<(), PublishError> {
        self.live().await.map(|_| ())
    }

    /// Keeps a connection open in the background (retrying every second while
    /// the broker is away) until `shutdown` fires, so readiness recovers
    /// without waiting for traffic.
    pub fn spawn_supervisor(&self, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                if let Err(e) = this.live().await {
                    tracing::warn!(error = %e, "broker connection failed; retrying");
                }
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        })
    }

    /// Publishes every message and returns only when the broker confirmed
    /// them all (persistent, mandatory), or fails as a whole.
    pub async fn publish_all(
        &self,
        messages: &[OutgoingMessage<'_>],
        timeout: Duration,
    ) -> Result<(), PublishError> {
        let attempt = async {
            let live = self.live().await?;
            let result = publish_on(&live, messages).await;
            if matches!(result, Err(PublishError::Unavailable(_))) {
                self.discard(&live).await;
            }
            result
        };
        match tokio::time::timeout(timeout, attempt).await {
            Ok(r) => r,
            Err(_) => {
                // A broker that stops confirming is treated as gone: the next
                // request starts from a fresh connection. (Take the value out
                // first: a read guard alive here would deadlock `discard`.)
                let current = self.inner.live.read().await.clone();
                if let Some(live) = current {
                    self.discard(&live).await;
                }
                Err(PublishError::Timeout(timeout))
            }
        }
    }

    /// Closes the connection (graceful shutdown).
    pub async fn close(&self) {
        if let Some(live) = self.inner.live.write().await.take() {
            let _ = live.conn.close(200, "shutdown".into()).await;
        }
    }

    async fn live(&self) -> Result<Arc<Live>, PublishError> {
        if let Some(live) = self.inner.live.read().await.as_ref()
            && live.healthy()
        {
            return Ok(live.clone());
        }
        let _guard = self.inner.connecting.lock().await;
        // Someone else may have reconnected while we waited.
        if let Some(live) = self.inner.live.read().await.as_ref()
            && live.healthy()
        {
            return Ok(live.clone());
        }
        let nodes = self
            .inner
            .nodes
            .as_ref()
            .map_err(|e| PublishError::Unavailable(format!("CONNECTOR_AMQP_URL: {e}")))?;
        // Bounded: a broker that accepts TCP but never answers must not hold
        // the reconnection lock (and every request behind it) forever.
        let n = u32::try_from(nodes.len()).unwrap_or(u32::MAX);
        let limit = CONNECT_TIMEOUT + NODE_CONNECT_TIMEOUT.saturating_mul(n.saturating_sub(1));
        let opened = tokio::time::timeout(limit, self.open(nodes))
            .await
            .map_err(|_| {
                PublishError::Unavailable(format!("no answer from the broker within {limit:?}"))
            })?;
        let live = Arc::new(opened.map_err(|e| PublishError::Unavailable(e.to_string()))?);
        tracing::info!(channels = live.channels.len(), "connected to the broker");
        *self.inner.live.write().await = Some(live.clone());
        Ok(live)
    }

    async fn open(&self, nodes: &BrokerNodes) -> lapin::Result<Live> {
        let conn = nodes.connect(&self.inner.name).await?;
        let mut channels = Vec::with_capacity(self.inner.channel_count);
        for i in 0..self.inner.channel_count {
            if i == 0 {
                self.inner.topology.declare(&conn).await?;
            }
            let ch = conn.create_channel().await?;
            // Publisher confirms: the broker acks each message once it is
            // safely enqueued (for quorum queues: replicated to a majority).
            ch.confirm_select(ConfirmSelectOptions::default()).await?;
            channels.push(ch);
        }
        Ok(Live {
            conn,
            channels,
            next: AtomicUsize::new(0),
        })
    }

    async fn discard(&self, live: &Arc<Live>) {
        let mut slot = self.inner.live.write().await;
        if slot.as_ref().is_some_and(|cur| Arc::ptr_eq(cur, live)) {
            *slot = None;
            let live = live.clone();
            tokio::spawn(async move {
                let _ = live.conn.close(320, "reconnecting".into()).await;
            });
        }
    }
}

async fn publish_on(live: &Live, messages: &[OutgoingMessage<'_>]) -> Result<(), PublishError> {
    let ch = live.channel();
    let mut confirms = Vec::with_capacity(messages.len());
    for m in messages {
        let props = BasicProperties::default()
            // 2 = persistent: written to disk, survives a broker restart.
            .with_delivery_mode(2)
            .with_content_type("application/json".into())
            .with_message_id(m.message_id.as_str().into())
            .with_headers(m.headers.clone());
        // Mandatory: an unroutable message comes back instead of vanishing.
        let opts = BasicPublishOptions {
            mandatory: true,
            ..Default::default()
        };
        let confirm = ch
            .basic_publish(m.exchange.into(), m.routing_key.into(), opts, m.body, props)
            .await
            .map_err(|e| PublishError::Unavailable(e.to_string()))?;
        confirms.push(confirm);
    }
    let outcomes = try_join_all(confirms)
        .await
        .map_err(|e| PublishError::Unavailable(e.to_string()))?;
    for outcome in outcomes {
        if outcome.is_nack() {
            return Err(PublishError::Refused("nack".into()));
        }
        if let Some(returned) = outcome.take_message() {
            return Err(PublishError::Refused(format!(
                "unroutable: {}",
                returned.reply_text
            )));
        }
    }
    Ok(())
}
