//! The partition phase of a cluster run (`fault-suite --cluster 3
//! --partition`): once the faults' window is over, with the load still
//! flowing, the node leading the work queue is cut off from the other two
//! (its Erlang distribution traffic, [`super::firewall`]) for at least
//! [`HOLD`], then the cut is healed.
//!
//! With `cluster_partition_handling = pause_minority` the cut node pauses
//! once it misses its peers' ticks (about `net_ticktime`): it closes its
//! clients' connections and stops listening, so they reconnect to the
//! majority, whose two queue replicas elect a new leader. Measured: when
//! the cut node paused, when its clients were all on the majority, when
//! conversions flowed again (the first one, and the first of an event
//! emitted after the cut: the whole path, ingest's confirms included),
//! ingest's refusals meanwhile, and how long the healed node took to rejoin.
//!
//! RabbitMQ 3.10 on Erlang 25 can hang while the healed node boots again
//! (`global:sync/0` waits for a peer; RabbitMQ's "global hang workaround"
//! does not unblock it on that Erlang): when the node does not accept
//! connections within [`REJOIN_LIMIT`], it is restarted, as an operator
//! would, and the run says so (`partition_node_restarts`).

use std::{
    collections::{BTreeMap, HashMap},
    time::{Duration, Instant},
};

use tokio::sync::Mutex;

use super::{
    cluster::RabbitCluster,
    failover::{self, Failover},
    firewall::Cut,
    services::port_open,
};
use sandbox::{FakeHubSpot, FakeImpact};

/// Shortest cut: long enough for the cut node to miss its peers' ticks and
/// pause, and for the majority to carry the load alone for a while.
pub const HOLD: Duration = Duration::from_secs(30);

/// Longest cut, when conversions have not flowed again by [`HOLD`].
const HOLD_LIMIT: Duration = Duration::from_secs(120);

/// Longest wait for the healed node to serve again before it is restarted.
const REJOIN_LIMIT: Duration = Duration::from_secs(60);

/// How often the cut node and the clients are looked at.
const POLL: Duration = Duration::from_millis(500);

/// What the partition phase measured.
#[derive(Debug, Clone, Default)]
pub struct Partition {
    /// The cut node's AMQP clients just before the cut (connection names).
    pub cut_node_clients: Vec<String>,
    /// Cut → the cut node paused (stopped accepting AMQP connections).
    pub paused: Option<Duration>,
    /// How many of the cut node's clients had reconnected to the majority
    /// by the heal: per connection name, the majority's gain over its own
    /// count before the cut, up to the cut node's count (a publisher that
    /// connects only when it has something to send may not be back yet).
    pub clients_reconnected: usize,
    /// Cut → all of the cut node's clients reconnected to the majority.
    pub clients_moved: Option<Duration>,
    /// How long the cut lasted.
    pub held: Duration,
    /// Heal → the cut node accepting AMQP connections again (none when it
    /// did not within [`REJOIN_LIMIT`]).
    pub rejoined: Option<Duration>,
    /// Whether the cut node had to be restarted to rejoin.
    pub restarted: bool,
    /// The pipeline's recovery, timed from the cut.
    pub recovery: Failover,
}

/// Counts of each connection name over some nodes.
fn names(per_node: &[Vec<String>], nodes: impl Iterator<Item = usize>) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for i in nodes {
        for name in &per_node[i] {
            *counts.entry(name.clone()).or_default() += 1;
        }
    }
    counts
}

/// Runs the phase on `rabbit` (held for the whole phase: no other fault
/// touches the broker meanwhile).
pub(super) async fn run(
    rabbit: &Mutex<RabbitCluster>,
    work_queue: &str,
    (hs, imp): (&FakeHubSpot, &FakeImpact),
    account_of: &HashMap<u64, String>,
) -> anyhow::Result<Partition> {
    let mut cluster = rabbit.lock().await;
    let n = cluster.nodes.len();
    let i = cluster.leader_of(work_queue).await?;
    let via = (i + 1) % n;
    let before = cluster.connections(via).await?;
    let on_cut = names(&before, std::iter::once(i));
    let majority_before = names(&before, (0..n).filter(|j| *j != i));
    let mut p = Partition {
        cut_node_clients: before[i].clone(),
        ..Partition::default()
    };
    let counted = failover::Before::now(hs, imp);
    let cut = Cut::apply(&cluster.nodes, i).await?;
    let cut_at = Instant::now();
    println!(
        "  cut {} (the leader of {work_queue}) off from the other nodes; its clients: {:?}",
        cluster.nodes[i].node(),
        p.cut_node_clients
    );
    let watch = tokio::spawn(failover::watch(
        hs.clone(),
        imp.clone(),
        account_of.clone(),
        counted,
    ));
    let node_port = cluster.nodes[i].port;
    while cut_at.elapsed() < HOLD || (!watch.is_finished() && cut_at.elapsed() < HOLD_LIMIT) {
        if p.paused.is_none() && !port_open(node_port).await {
            p.paused = Some(cut_at.elapsed());
            println!(
                "  {} paused after {:.1} s",
                cluster.nodes[i].node(),
                cut_at.elapsed().as_secs_f64()
            );
        }
        if p.paused.is_some()
            && p.clients_moved.is_none()
            && let Ok(now) = cluster.connections(via).await
        {
            let majority = names(&now, (0..n).filter(|j| *j != i));
            p.clients_reconnected = on_cut
                .iter()
                .map(|(name, k)| {
                    let had = majority_before.get(name).copied().unwrap_or(0);
                    let has = majority.get(name).copied().unwrap_or(0);
                    has.saturating_sub(had).min(*k)
                })
                .sum();
            if p.clients_reconnected == p.cut_node_clients.len() {
                p.clients_moved = Some(cut_at.elapsed());
                println!(
                    "  the cut node's clients were all on the majority after {:.1} s: {now:?}",
                    cut_at.elapsed().as_secs_f64()
                );
            }
        }
        tokio::time::sleep(POLL).await;
    }
    p.held = cut_at.elapsed();
    cut.heal().await?;
    let healed_at = Instant::now();
    println!("  healed after {:.1} s", p.held.as_secs_f64());
    while !port_open(node_port).await && healed_at.elapsed() < REJOIN_LIMIT {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if port_open(node_port).await {
        p.rejoined = Some(healed_at.elapsed());
        println!(
            "  {} is back after {:.1} s",
            cluster.nodes[i].node(),
            healed_at.elapsed().as_secs_f64()
        );
    } else {
        println!(
            "  {} did not serve again within {REJOIN_LIMIT:?} of the heal (see its log); restarting it",
            cluster.nodes[i].node()
        );
        cluster.nodes[i].restart(Duration::ZERO).await?;
        p.restarted = true;
    }
    cluster.wait_running(n).await?;
    p.recovery = watch.await?;
    Ok(p)
}
