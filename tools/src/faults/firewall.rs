//! A network partition on loopback: an nftables table of the run's own
//! drops one cluster node's Erlang distribution traffic to and from the
//! other nodes, and nothing else (its AMQP clients and the CLI tools still
//! reach it, as they would from the node's side of a real split).
//!
//! Every node's outgoing distribution connections come from its own
//! loopback address ([`super::services::ClusterMember::dist_source`]) and
//! its listener has a port of its own, so the cut node's traffic is: what
//! its address sends or receives, and what the other nodes' addresses send
//! to or receive from its distribution port. The packets are dropped
//! silently on input, as a broken link would: the nodes find out through
//! Erlang's ticks, not through a reset. Needs root and `nft` (Debian:
//! `apt-get install nftables`).

use std::process::Stdio;

use anyhow::{Context as _, bail};
use tokio::{io::AsyncWriteExt as _, process::Command};

use super::services::PrivateRabbit;

/// A cut in force; [`Cut::heal`] lifts it, and so does dropping it (a
/// failed run leaves no rule behind).
pub struct Cut {
    table: String,
    healed: bool,
}

/// Checks that nftables can be used here (the `nft` tool, and the right to
/// change the rules), before a run counts on it.
pub async fn check_available() -> anyhow::Result<()> {
    let out = Command::new("nft")
        .args(["list", "tables"])
        .stdin(Stdio::null())
        .output()
        .await
        .context("running nft (Debian: apt-get install nftables)")?;
    if !out.status.success() {
        bail!(
            "nft cannot list the rules (root and CAP_NET_ADMIN are needed): {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

impl Cut {
    /// Cuts node `i` of `nodes` off from the others.
    pub async fn apply(nodes: &[PrivateRabbit], i: usize) -> anyhow::Result<Self> {
        let source = |n: &PrivateRabbit| {
            n.member()
                .map(|m| m.dist_source)
                .with_context(|| format!("{} is not a cluster node", n.node()))
        };
        let cut = &nodes[i];
        let own = source(cut)?;
        let peers = nodes
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, n)| source(n).map(|a| a.to_string()))
            .collect::<anyhow::Result<Vec<_>>>()?
            .join(", ");
        let port = cut.dist_port();
        let table = format!("fault_suite_{}", std::process::id());
        let rules = [
            format!("table inet {table} {{"),
            "chain input {".into(),
            "type filter hook input priority filter; policy accept;".into(),
            format!("ip saddr {own} drop"),
            format!("ip daddr {own} drop"),
            format!("ip saddr {{ {peers} }} tcp dport {port} drop"),
            format!("ip daddr {{ {peers} }} tcp sport {port} drop"),
            "}".into(),
            "}".into(),
        ]
        .join("\n");
        nft(&["-f", "-"], Some(&rules)).await?;
        Ok(Self {
            table,
            healed: false,
        })
    }

    /// Lifts the cut.
    pub async fn heal(mut self) -> anyhow::Result<()> {
        nft(&["delete", "table", "inet", &self.table], None).await?;
        self.healed = true;
        Ok(())
    }
}

impl Drop for Cut {
    fn drop(&mut self) {
        if !self.healed {
            let _ = std::process::Command::new("nft")
                .args(["delete", "table", "inet", &self.table])
                .stdin(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// Runs `nft` with `args`, feeding it `input`.
async fn nft(args: &[&str], input: Option<&str>) -> anyhow::Result<()> {
    let mut child = Command::new("nft")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("running nft (Debian: apt-get install nftables)")?;
    let mut stdin = child.stdin.take().context("nft's standard input")?;
    if let Some(input) = input {
        stdin.write_all(input.as_bytes()).await?;
    }
    drop(stdin);
    let out = child.wait_with_output().await?;
    if !out.status.success() {
        bail!(
            "nft {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}
