//! A private RabbitMQ node for the fault suite: started as a child on free
//! ports under a temporary folder, so the suite can stop, kill and restart
//! it without touching the shared services ([`super::cluster`] joins
//! several into a cluster).

use std::{
    net::Ipv4Addr,
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use tokio::process::{Child, Command};

use rustix::process::Signal;

use crate::process::{free_port, signal_group};

/// Whether something accepts TCP connections on `port`.
pub(super) async fn port_open(port: u16) -> bool {
    tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_ok()
}

/// How a node takes part in one of the suite's clusters.
#[derive(Debug, Clone)]
pub struct ClusterMember {
    /// The Erlang cookie the nodes share.
    pub cookie: String,
    /// The loopback address (in 127.0.0.0/8) its outgoing Erlang
    /// distribution connections come from: one per node, so a firewall
    /// rule can tell the nodes' traffic apart ([`super::firewall`]).
    pub dist_source: Ipv4Addr,
    /// Erlang's `net_ticktime`: a peer silent for about this long is down.
    pub net_ticktime_secs: u32,
}

/// The settings of a cluster node ([`ClusterMember`]): RabbitMQ's
/// partition handling, in the node's `rabbitmq.conf`.
const CLUSTER_NODE_CONF: &str = "\
# A node cut off from the majority of the cluster pauses (stops serving
# clients) until it sees the majority again: no two halves accept
# messages for the same queue at once.
cluster_partition_handling = pause_minority
";

/// A RabbitMQ node of our own (`rabbitmq-server` in the foreground).
pub struct PrivateRabbit {
    dir: PathBuf,
    /// The AMQP port.
    pub port: u16,
    dist_port: u16,
    node: String,
    member: Option<ClusterMember>,
    child: Option<Child>,
}

impl PrivateRabbit {
    /// Starts a node under `dir` and waits until it accepts AMQP connections.
    pub async fn start(dir: &Path) -> anyhow::Result<Self> {
        let node = format!("faultsuite{}@localhost", std::process::id());
        Self::start_node(&dir.join("rabbitmq"), node, None).await
    }

    /// Starts node `node` with its files under `dir` and, for a cluster
    /// node, its `member` settings (the nodes of a cluster share one
    /// cookie); waits until it accepts AMQP connections.
    pub async fn start_node(
        dir: &Path,
        node: String,
        member: Option<ClusterMember>,
    ) -> anyhow::Result<Self> {
        let mut me = Self {
            dir: dir.to_owned(),
            port: free_port()?,
            dist_port: free_port()?,
            node,
            member,
            child: None,
        };
        std::fs::create_dir_all(me.dir.join("home"))?;
        if let Some(m) = &me.member {
            write_cookie(&me.dir.join("home/.erlang.cookie"), &m.cookie)?;
            std::fs::write(me.dir.join("rabbitmq.conf"), CLUSTER_NODE_CONF)?;
        }
        me.launch().await?;
        Ok(me)
    }

    /// The Erlang node name (`name@localhost`).
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The port its Erlang distribution listens on (peers connect to it).
    pub fn dist_port(&self) -> u16 {
        self.dist_port
    }

    /// Its cluster settings (none for a lone node).
    pub fn member(&self) -> Option<&ClusterMember> {
        self.member.as_ref()
    }

    /// Runs a RabbitMQ CLI tool (`rabbitmqctl`, `rabbitmq-queues`) against
    /// this node with its cookie; its standard output.
    pub async fn cli(&self, tool: &str, args: &[&str]) -> anyhow::Result<String> {
        let bin = format!("/usr/lib/rabbitmq/bin/{tool}");
        let bin = if Path::new(&bin).exists() {
            bin
        } else {
            tool.to_owned()
        };
        let out = tokio::time::timeout(
            Duration::from_secs(60),
            Command::new(&bin)
                .arg("-n")
                .arg(&self.node)
                .args(args)
                // The cookie lives in HOME.
                .env("HOME", self.dir.join("home"))
                .stdin(Stdio::null())
                .kill_on_drop(true)
                .output(),
        )
        .await
        .with_context(|| format!("{tool} {args:?} on {} took over 60 s", self.node))??;
        if !out.status.success() {
            bail!(
                "{tool} {args:?} on {}: {}{}",
                self.node,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// SIGKILL of the node's Erlang VM (its whole process group), no
    /// warning; returns once its AMQP port is closed.
    pub async fn kill(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            if let Some(pid) = child.id() {
                signal_group(pid, Signal::KILL);
            }
            child.wait().await?;
        }
        let started = Instant::now();
        while port_open(self.port).await && started.elapsed() < Duration::from_secs(20) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(())
    }

    /// Starts a stopped or killed node again (same name, ports and data).
    pub async fn relaunch(&mut self) -> anyhow::Result<()> {
        if self.child.is_some() {
            return Ok(());
        }
        self.launch().await
    }

    /// `amqp://guest:guest@127.0.0.1:port/%2f`.
    pub fn amqp_url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    async fn launch(&mut self) -> anyhow::Result<()> {
        let bin = [
            "/usr/lib/rabbitmq/bin/rabbitmq-server",
            "/usr/sbin/rabbitmq-server",
        ]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap_or("rabbitmq-server");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("server.log"))?;
        let d = |s: &str| self.dir.join(s).to_string_lossy().into_owned();
        let mut cmd = Command::new(bin);
        if let Some(m) = &self.member {
            let [a, b, c, e] = m.dist_source.octets();
            cmd.env(
                "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS",
                format!(
                    "-kernel inet_dist_connect_options [{{ip,{{{a},{b},{c},{e}}}}}] \
                     -kernel net_ticktime {}",
                    m.net_ticktime_secs
                ),
            );
        }
        let child = cmd
            // The cookie lives in HOME; a fresh one keeps us off the shared node's.
            .env("HOME", d("home"))
            .env("RABBITMQ_NODENAME", &self.node)
            .env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
            .env("RABBITMQ_NODE_PORT", self.port.to_string())
            .env("RABBITMQ_DIST_PORT", self.dist_port.to_string())
            .env("RABBITMQ_MNESIA_BASE", d("mnesia"))
            .env("RABBITMQ_LOG_BASE", d("log"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", d("enabled_plugins"))
            .env("RABBITMQ_CONFIG_FILE", d("rabbitmq"))
            .env("RABBITMQ_ADVANCED_CONFIG_FILE", d("advanced.config"))
            .env("RABBITMQ_PID_FILE", d("pid"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting {bin} (is RabbitMQ installed?)"))?;
        self.child = Some(child);
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(90) {
            if let Some(c) = self.child.as_mut()
                && let Some(status) = c.try_wait()?
            {
                bail!(
                    "the private RabbitMQ exited at start-up ({status}); see {}",
                    self.dir.join("server.log").display()
                );
            }
            if port_open(self.port).await
                && shared::broker::connect(&self.amqp_url(), "fault-suite-probe")
                    .await
                    .is_ok()
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        bail!(
            "the private RabbitMQ did not accept connections within 90 s; see {}",
            self.dir.join("server.log").display()
        )
    }

    /// Stops the node (SIGTERM: RabbitMQ's own orderly stop) and waits.
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        if let Some(pid) = child.id() {
            signal_group(pid, Signal::TERM);
        }
        if tokio::time::timeout(Duration::from_secs(60), child.wait())
            .await
            .is_err()
        {
            if let Some(pid) = child.id() {
                signal_group(pid, Signal::KILL);
            }
            child.wait().await?;
        }
        // The Erlang VM's helpers leave with the group; wait for the port.
        let started = Instant::now();
        while port_open(self.port).await && started.elapsed() < Duration::from_secs(20) {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Ok(())
    }

    /// Stops and starts the node again (same data: durable queues survive).
    pub async fn restart(&mut self, down_for: Duration) -> anyhow::Result<()> {
        self.stop().await?;
        tokio::time::sleep(down_for).await;
        self.launch().await
    }
}

/// Writes an Erlang cookie file (owner-only, as Erlang requires).
fn write_cookie(path: &Path, cookie: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o400)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(cookie.as_bytes())?;
    Ok(())
}

impl Drop for PrivateRabbit {
    fn drop(&mut self) {
        if let Some(pid) = self.child.as_ref().and_then(Child::id) {
            signal_group(pid, Signal::KILL);
        }
    }
}
