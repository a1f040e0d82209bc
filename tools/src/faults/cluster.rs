//! The fault suite's broker: one private RabbitMQ node, or a cluster of
//! several on loopback (`fault-suite --cluster 3`): distinct node names
//! and ports, one random Erlang cookie, joined with `join_cluster`; each
//! node's distribution traffic comes from a loopback address of its own
//! (so [`super::firewall`] can cut one node off), and partitions are
//! handled with `pause_minority`.

use std::{net::Ipv4Addr, path::Path, time::Duration};

use anyhow::{Context as _, bail};
use rand::Rng as _;

use super::services::{ClusterMember, PrivateRabbit};

/// The cluster nodes' Erlang `net_ticktime`: a node that hears nothing
/// from a peer for 10 s (±25 %) counts it down. RabbitMQ's default is
/// 60 s; a shorter one keeps a partition phase short, and every figure
/// measured from a cut scales with it.
pub const NET_TICKTIME_SECS: u32 = 10;

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
        // 127.<random>.<random>.<node>: a run's addresses differ from
        // another run's, so cutting one run's node touches no other run.
        let mut rng = rand::rng();
        let net: [u8; 2] = [rng.random_range(64..=254), rng.random_range(1..=254)];
        let starts = (1..=n).map(|i| {
            let dir = dir.join(format!("rabbitmq-{i}"));
            let member = ClusterMember {
                cookie: cookie.clone(),
                dist_source: Ipv4Addr::new(127, net[0], net[1], i as u8),
                net_ticktime_secs: NET_TICKTIME_SECS,
            };
            async move {
                PrivateRabbit::start_node(&dir, format!("fs{pid}n{i}@localhost"), Some(member))
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
    pub(super) async fn wait_running(&self, n: usize) -> anyhow::Result<()> {
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

    /// The AMQP connections each node holds (by index), as node `via`
    /// reports them for the whole cluster: the connection names the
    /// clients gave ("?" for none).
    pub async fn connections(&self, via: usize) -> anyhow::Result<Vec<Vec<String>>> {
        let out = self.nodes[via]
            .cli(
                "rabbitmqctl",
                &[
                    "list_connections",
                    "port",
                    "client_properties",
                    "--formatter",
                    "json",
                    "-q",
                ],
            )
            .await?;
        let rows: Vec<serde_json::Value> =
            serde_json::from_str(&out).with_context(|| format!("list_connections said {out}"))?;
        let mut per_node = vec![Vec::new(); self.nodes.len()];
        for r in rows {
            let port = r["port"].as_u64().unwrap_or_default();
            if let Some(i) = self.nodes.iter().position(|n| u64::from(n.port) == port) {
                per_node[i].push(connection_name(&r["client_properties"]));
            }
        }
        for names in &mut per_node {
            names.sort();
        }
        Ok(per_node)
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

/// The `connection_name` among a connection's client properties, as the
/// CLI's JSON shows them (`[["connection_name","longstr","worker"],...]`
/// or an object); "?" when the client gave none.
fn connection_name(props: &serde_json::Value) -> String {
    let name = match props {
        serde_json::Value::Array(items) => items
            .iter()
            .find(|i| i[0] == "connection_name")
            .and_then(|i| i[2].as_str()),
        other => other["connection_name"].as_str(),
    };
    name.unwrap_or("?").to_owned()
}
