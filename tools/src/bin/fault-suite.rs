//! `cargo run --release --bin fault-suite`: the whole pipeline under load
//! while workers are SIGKILLed, RabbitMQ restarts, PostgreSQL crashes,
//! impact.com fails (5xx, 429, timeouts), HubSpot answers 429 and delivers
//! duplicates out of order; then every conversion is reconciled. Exits 1 on
//! anything lost or doubled, 2 when the private services cannot be started.
//! RabbitMQ and PostgreSQL are private instances on free ports (the shared
//! ones are never touched).

use std::time::Duration;

use clap::Parser;
use tools::{
    binaries::Binaries,
    faults::{self, FaultConfig},
};

/// Fault suite: nothing lost, nothing doubled.
#[derive(Parser)]
struct Args {
    /// Seconds of load and faults.
    #[arg(long, default_value_t = 300)]
    duration: u64,
    /// Multiplies the load (contacts and deals per portal per second).
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
    /// Portals under load.
    #[arg(long, default_value_t = 3)]
    portals: u64,
    /// Worker processes.
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Worker SIGKILLs at random moments.
    #[arg(long, default_value_t = 8)]
    kills: usize,
    /// Seed of the fault schedule and the data.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Seconds to wait for the last conversions after the faults.
    #[arg(long, default_value_t = 600)]
    settle: u64,
    /// The reduced CI run (40 s, 2 portals, 3 kills); other flags ignored but --seed.
    #[arg(long)]
    reduced: bool,
    /// Keep the work folder (logs, data) even when the run passed.
    #[arg(long)]
    keep: bool,
    /// RabbitMQ nodes: 1, or a cluster of 3 or more on loopback whose
    /// work-queue leader is SIGKILLed mid-run and brought back (instead of
    /// the single node's restart). Works with --reduced too.
    #[arg(long, default_value_t = 1)]
    cluster: usize,
    /// With --cluster: once the faults' window is over, cut the work
    /// queue's leader off from the other nodes (nftables drops its Erlang
    /// distribution traffic; needs root and `nft`) with the load still
    /// flowing, then heal.
    #[arg(long)]
    partition: bool,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    shared::tls::install_crypto_provider();
    let bins = match Binaries::ensure(&["worker", "ingest"]) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("fault-suite: {e:#}");
            return std::process::ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("fault-suite: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    if args.cluster == 0 || args.cluster == 2 {
        eprintln!(
            "fault-suite: --cluster takes 1, or 3 and more (a majority must survive a lost node)"
        );
        return std::process::ExitCode::from(2);
    }
    if args.partition && args.cluster < 3 {
        eprintln!("fault-suite: --partition needs --cluster 3 or more");
        return std::process::ExitCode::from(2);
    }
    let mut cfg = if args.reduced {
        FaultConfig::reduced(args.seed)
    } else {
        FaultConfig {
            duration: Duration::from_secs(args.duration),
            portals: args.portals,
            workers: args.workers.max(1),
            contacts_per_sec: (5.0 * args.scale).round() as usize,
            deals_per_sec: (2.0 * args.scale).round().max(1.0) as usize,
            kills: args.kills,
            seed: args.seed,
            settle: Duration::from_secs(args.settle),
            work_dir: faults::default_work_dir(),
            cluster: 1,
            partition: false,
        }
    };
    cfg.cluster = args.cluster;
    cfg.partition = args.partition;
    println!(
        "fault-suite: {} s, {} portals, {} workers, {} contacts + {} deals per portal per s, {} kills, {} RabbitMQ node(s){}, seed {}",
        cfg.duration.as_secs(),
        cfg.portals,
        cfg.workers,
        cfg.contacts_per_sec,
        cfg.deals_per_sec,
        cfg.kills,
        cfg.cluster,
        if cfg.partition {
            " then a partition"
        } else {
            ""
        },
        cfg.seed
    );
    let dir = cfg.work_dir.clone();
    match rt.block_on(faults::run(cfg, &bins)) {
        Ok(report) => {
            print!("{}", report.render());
            if report.passed() {
                if !args.keep {
                    let _ = std::fs::remove_dir_all(&dir);
                }
                std::process::ExitCode::SUCCESS
            } else {
                eprintln!("fault-suite: FAILED; logs kept in {}", dir.display());
                std::process::ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("fault-suite: cannot run: {e:#}");
            eprintln!("fault-suite: logs in {}", dir.display());
            std::process::ExitCode::from(2)
        }
    }
}
