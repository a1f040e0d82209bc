//! The fault suite's broker: one private RabbitMQ node, or a cluster of
//! several on loopback (`fault-suite --cluster 3`): distinct node names
//! and ports, one random Erlang cookie, joined with `join_cluster`.

use std::{path::Path, time::Duration};

use anyhow::{Context as _, bail};

use super::services::PrivateRabbit;

/// The private broker of a run.
pub struct RabbitCluster {
    /// Its nodes; the first is the one the others joined.
    pub nodes: Vec<PrivateRabbit>,
}

impl RabbitCluster {
    /// One node (`n` = 1: the suite's usual private RabbitMQ) or `n` nodes
    /// joined into a cluster, each accepting AMQP connections.
    pub async fn start(dir: &Path, n: usize) -> anyhow::Result<Self> {
        if n <= 1 {
            return Ok(Self {
                nodes: vec![PrivateRabbit::start(dir).await?],
            });
        }
        let cookie = uuid::Uuid::new_v4().simple().to_string().to_uppercase();
        let pid = std::process::id();
        let starts = (1..=n).map(|i| {
            let dir = dir.join(format!("rabbitmq-{i}"));
            let cookie = cookie.clone();
            async move {
                PrivateRabbit::start_node(&dir, format!("fs{pid}n{i}@localhost"), Some(&cookie))
                    .await
                    .with_context(|| format!("starting cluster node {i}"))
            }
        });
        let nodes = futures::future::try_join_all(starts).await?;
        let me = Self { nodes };
        let first = me.nodes[0].node().to_owned();
        for node in &me.nodes[1..] {
            node.cli("rabbitmqctl", &["stop_app"]).await?;
            node.cli("rabbitmqctl", &["join_cluster", &first]).await?;
            node.cli("rabbitmqctl", &["start_app"]).await?;
        }
        me.wait_running(n).await?;
        Ok(me)
    }

    /// Every node's URL, separated by commas (`CONNECTOR_AMQP_URL`).
    pub fn amqp_urls(&self) -> String {
        self.nodes
            .iter()
            .map(PrivateRabbit::amqp_url)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Waits until a live node reports `n` running nodes.
    async fn wait_running(&self, n: usize) -> anyhow::Result<()> {
        for _ in 0..120 {
            if let Ok(out) = self
                .any_cli("rabbitmqctl", &["cluster_status", "--formatter", "json"])
                .await
                && let Ok(v) = serde_json::from_str::<serde_json::Value>(&out)
                && v["running_nodes"].as_array().map_or(0, Vec::len) >= n
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        bail!("the cluster did not report {n} running nodes within 60 s")
    }

    /// A CLI command on the first node that answers.
    async fn any_cli(&self, tool: &str, args: &[&str]) -> anyhow::Result<String> {
        let mut last = None;
        for node in &self.nodes {
            match node.cli(tool, args).await {
                Ok(out) => return Ok(out),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("no nodes")))
    }

    /// The index of the node that leads quorum queue `queue`.
    pub async fn leader_of(&self, queue: &str) -> anyhow::Result<usize> {
        let out = self
            .any_cli(
                "rabbitmqctl",
                &[
                    "list_queues",
                    "-p",
                    "/",
                    "name",
                    "leader",
                    "--formatter",
                    "json",
                    "-q",
                ],
            )
            .await?;
        let rows: Vec<serde_json::Value> =
            serde_json::from_str(&out).with_context(|| format!("list_queues said {out}"))?;
        let leader = rows
            .iter()
            .find(|r| r["name"] == queue)
            .and_then(|r| r["leader"].as_str())
            .with_context(|| format!("no leader for {queue} in {out}"))?;
        self.nodes
            .iter()
            .position(|n| n.node() == leader)
            .with_context(|| format!("{leader} is not one of our nodes"))
    }

    /// Brings node `i` back after a kill and waits until the cluster
    /// counts it again.
    pub async fn bring_back(&mut self, i: usize) -> anyhow::Result<()> {
        self.nodes[i].relaunch().await?;
        self.wait_running(self.nodes.len()).await
    }

    /// Stops every node (SIGTERM, orderly).
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        for node in self.nodes.iter_mut().rev() {
            node.stop().await?;
        }
        Ok(())
    }
}
