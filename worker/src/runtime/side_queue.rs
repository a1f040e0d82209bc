//! The queues a worker drains beside the work queue, one message at a time
//! (the dead-letter sink, the console's replay requests): a consumer that
//! reconnects with backoff until shutdown.

use std::time::Duration;

use futures::StreamExt;
use lapin::{
    message::Delivery,
    options::{BasicConsumeOptions, BasicQosOptions},
    types::FieldTable,
};
use shared::broker::{BrokerNodes, Topology};
use tokio_util::sync::CancellationToken;

/// One drained queue.
pub struct SideQueue<'a> {
    /// What it is, for logs and the connection's name (`dead-letter-sink`).
    pub name: &'static str,
    /// The broker (one URL, or a cluster's nodes separated by commas).
    pub amqp_url: &'a str,
    /// The topology, declared on every connection.
    pub topology: &'a Topology,
    /// The queue's name.
    pub queue: String,
}

impl SideQueue<'_> {
    /// Hands each message to `settle` (which acknowledges it) until
    /// `shutdown`, reconnecting when the broker goes away or `settle` fails.
    pub async fn drain<F>(
        &self,
        shutdown: &CancellationToken,
        mut settle: impl FnMut(Delivery) -> F,
    ) where
        F: Future<Output = anyhow::Result<()>>,
    {
        let nodes = match BrokerNodes::parse(self.amqp_url) {
            Ok(n) => n,
            Err(e) => {
                tracing::error!(queue = self.name, error = %e, "CONNECTOR_AMQP_URL");
                return;
            }
        };
        let mut backoff = Duration::from_millis(200);
        while !shutdown.is_cancelled() {
            match self.session(&nodes, shutdown, &mut settle).await {
                Ok(()) => break,
                Err(e) => {
                    tracing::warn!(queue = self.name, error = %e, retry_in = ?backoff, "consumer disconnected; reconnecting");
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
            }
        }
    }

    async fn session<F>(
        &self,
        nodes: &BrokerNodes,
        shutdown: &CancellationToken,
        settle: &mut impl FnMut(Delivery) -> F,
    ) -> anyhow::Result<()>
    where
        F: Future<Output = anyhow::Result<()>>,
    {
        let conn = nodes.connect(&format!("worker-{}", self.name)).await?;
        self.topology.declare(&conn).await?;
        let ch = conn.create_channel().await?;
        // One at a time: these queues are a trickle, order helps operators,
        // and replays are rate-limited anyway.
        ch.basic_qos(1, BasicQosOptions::default()).await?;
        let mut consumer = ch
            .basic_consume(
                self.queue.as_str().into(),
                self.name.into(),
                // Manual acks: a message leaves the queue only once settled.
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        loop {
            let next = tokio::select! {
                () = shutdown.cancelled() => {
                    let _ = conn.close(200, "shutdown".into()).await;
                    return Ok(());
                }
                d = consumer.next() => d,
            };
            match next {
                Some(Ok(d)) => settle(d).await?,
                Some(Err(e)) => return Err(e.into()),
                None => anyhow::bail!("{} consumer ended", self.name),
            }
        }
    }
}
