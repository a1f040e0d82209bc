//! The fault suite (`fault-suite`): the whole pipeline under load — ingest
//! and workers as child processes, a private RabbitMQ and PostgreSQL, the
//! sandbox in this process — while workers are SIGKILLed at random moments,
//! RabbitMQ is restarted, PostgreSQL crashes, impact.com fails (5xx, 429,
//! timeouts), HubSpot answers 429 and delivers duplicates out of order.
//! A cluster run can add a network partition of one node
//! ([`partition`]). Then it reconciles (see [`reconcile`]) and prints the
//! counts.

pub mod cluster;
mod env;
mod failover;
mod firewall;
mod inject;
mod partition;
pub mod postgres;
pub mod procs;
pub mod reconcile;
mod report;
mod run;
pub mod services;

pub use failover::Failover;
pub use partition::Partition;
pub use report::Report;
pub use run::run;

use std::time::Duration;

/// What a run does.
#[derive(Debug, Clone)]
pub struct FaultConfig {
    /// How long load and faults go on.
    pub duration: Duration,
    /// HubSpot portals under load (each with its own impact.com account).
    pub portals: u64,
    /// Worker processes.
    pub workers: usize,
    /// Contacts created per portal per second.
    pub contacts_per_sec: usize,
    /// Deals per portal per second, each moved through three stages.
    pub deals_per_sec: usize,
    /// SIGKILLs of a random worker, at random moments.
    pub kills: usize,
    /// Seed of the fault schedule and the sandbox's data.
    pub seed: u64,
    /// How long to wait for the last conversions once the faults stop.
    pub settle: Duration,
    /// Where logs and the private services' data go (a fresh folder).
    pub work_dir: std::path::PathBuf,
    /// RabbitMQ nodes: 1, or a cluster of 3 or more whose work-queue
    /// leader is SIGKILLed mid-run (instead of the single node's restart).
    pub cluster: usize,
    /// In a cluster run: after the faults' window, cut the work queue's
    /// leader off from the other nodes with the load still flowing, then
    /// heal (needs root and `nft`).
    pub partition: bool,
}

impl FaultConfig {
    /// The reduced run (CI): 40 s of load on two portals.
    pub fn reduced(seed: u64) -> Self {
        Self {
            duration: Duration::from_secs(40),
            portals: 2,
            workers: 2,
            contacts_per_sec: 2,
            deals_per_sec: 1,
            kills: 3,
            seed,
            settle: Duration::from_secs(300),
            work_dir: default_work_dir(),
            cluster: 1,
            partition: false,
        }
    }
}

/// `$TMPDIR/fault-suite-<pid>-<random>`.
pub fn default_work_dir() -> std::path::PathBuf {
    std::env::temp_dir().join(format!(
        "fault-suite-{}-{}",
        std::process::id(),
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    ))
}
