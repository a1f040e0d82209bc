//! `cargo run --release --bin bench-pipeline`: the whole pipeline on this
//! machine — the sandbox (fake HubSpot with its rate limit and ~80 ms
//! latency, fake impact.com with ~50 ms), ingest and worker(s) as processes
//! of their own, RabbitMQ and PostgreSQL — through:
//!
//! - `a-import`: 100,000 contact creations imported in one portal while nine
//!   other portals each create a contact every 500 ms (their latency is
//!   reported apart);
//! - `b-deals`: a steady stream of deal stage changes (deals with a line
//!   item and a contact), offered at 400 conversions/s for 60 s;
//! - `c-import`, `c-deals`: the same with rate limits and latency off (the
//!   deals all at once);
//! - `floor`: the least work `c-import`'s conversions need on the same
//!   services, as a minimal program (`tools::bench::floor`); the `c-*`
//!   scenarios run after it print their `ratio_to_floor=`;
//! - `d-portals`: 50 portals at once, each under its own HubSpot budget
//!   (limits and latency on), each importing contacts and moving deals:
//!   the aggregate rate, the slowest portal's share and each portal's p99.
//!
//! Every scenario prints the CPU milliseconds per conversion of each
//! process (`cpu_ms_per_conv_worker=` …, `tools::bench::cpu`).
//!
//! Prints conversions/s, HubSpot calls per conversion, latency from webhook
//! accepted to conversion delivered (p50/p99), peak RSS per process and the
//! ceiling HubSpot's quota allows, and one `RESULT scenario=<name> ...` line
//! per result.

use std::time::{Duration, Instant};

use clap::Parser;
use tools::{
    bench::{
        self,
        cpu::{CpuPerConversion, CpuProbe, on_sandbox},
        floor::{self, FloorTarget},
        pipeline::{
            BUSY, EnvOptions, Measured, PeakRss, PipelineEnv, Triggers, database_name,
            quiet_portals, start_sandbox,
        },
    },
    binaries::Binaries,
    faults::postgres::PrivatePostgres,
};

/// HubSpot's burst limit of a public app: calls per 10 s per account.
const CALLS_PER_10S: f64 = 110.0;
/// Objects per batch read.
const PER_CALL: f64 = 100.0;
/// HubSpot calls per 100 deal stage conversions at best: the deals, their
/// line-item associations, the line items (the seed mappings read the
/// contact id from the deal, so no contact associations).
const DEAL_CALLS_PER_BATCH: f64 = 3.0;

/// The worker's delivery batches of one portal posted at once
/// (`worker::pipeline::deliver::MAX_FLUSHING`): its delivery concurrency is
/// event concurrency × portal concurrency / this.
const WORKER_MAX_FLUSHING: usize = 2;

/// Whole-pipeline throughput and latency benchmark.
#[derive(Parser)]
struct Args {
    /// Scales every scenario's size (1.0: 100,000 contacts, 60 s of deals).
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
    /// A reduced run (same as `--scale 0.2`): a few minutes in all.
    #[arg(long)]
    quick: bool,
    /// Worker process counts to run every scenario with, e.g. `1,2`.
    #[arg(long, value_delimiter = ',', default_value = "1")]
    workers: Vec<usize>,
    /// Scenarios to run.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "a-import,b-deals,floor,c-import,c-deals"
    )]
    scenarios: Vec<String>,
    /// Worker pool sizes (`CONNECTOR_WORKER_DB_CONNECTIONS`) to run every
    /// scenario with, side by side, e.g. `8,48`; unset: the default.
    #[arg(long, value_delimiter = ',')]
    db_connections: Vec<u32>,
    /// Runs on a private PostgreSQL (initdb + pg_ctl, like the fault suite)
    /// with this `max_connections`, e.g. 100; unset: the shared server.
    #[arg(long)]
    max_connections: Option<u32>,
    /// Workers' main pool through this PgBouncer (transaction mode,
    /// `postgres://user@host:port`, in front of the run's PostgreSQL), their
    /// LISTEN and migrations straight to PostgreSQL
    /// (`CONNECTOR_DATABASE_DIRECT_URL`); unset: workers connect directly.
    #[arg(long)]
    worker_pgbouncer: Option<String>,
}

/// One run's set-up: the pool size, the database server.
struct RunOpts {
    db_connections: Option<u32>,
    max_connections: Option<u32>,
    env: EnvOptions,
}

impl RunOpts {
    /// The key=value pairs the RESULT lines carry.
    fn kv(&self) -> String {
        let or_default = |v: Option<u32>, d: &str| v.map_or(d.to_owned(), |v| v.to_string());
        format!(
            "db_connections={} max_connections={} worker_db={}",
            or_default(self.db_connections, "default"),
            or_default(self.max_connections, "shared_server"),
            if self.env.worker_pooler_url.is_some() {
                "pgbouncer"
            } else {
                "direct"
            },
        )
    }
}

/// What scenarios of one run share.
struct Run<'a> {
    bins: &'a Binaries,
    workers: usize,
    scale: f64,
    /// The `floor` scenario's rate, once it ran.
    floor_per_s: Option<f64>,
    /// The pool size and the database server of this run.
    opts: RunOpts,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    shared::tls::install_crypto_provider();
    let bins = Binaries::ensure(&["worker", "ingest"])?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(run(args, &bins))
}

async fn run(args: Args, bins: &Binaries) -> anyhow::Result<()> {
    let scale = if args.quick { 0.2 } else { args.scale };
    println!(
        "bench-pipeline: scale {scale}, workers {:?}, {} cores, load {}",
        args.workers,
        bench::cores(),
        load_average()
    );
    // A private server with a small max_connections, kept for the whole run.
    let private = match args.max_connections {
        Some(max) => {
            let dir =
                std::env::temp_dir().join(format!("bench-pipeline-pg-{}", std::process::id()));
            let pg = PrivatePostgres::start_with(&dir, max).await?;
            println!(
                "bench-pipeline: private PostgreSQL on port {} with max_connections={max}",
                pg.port
            );
            Some((pg, dir))
        }
        None => None,
    };
    let pools: Vec<Option<u32>> = if args.db_connections.is_empty() {
        vec![None]
    } else {
        args.db_connections.iter().copied().map(Some).collect()
    };
    let mut floor_per_s = None;
    let result = async {
        for &workers in &args.workers {
            for name in &args.scenarios {
                for &pool in &pools {
                    let opts = RunOpts {
                        db_connections: pool,
                        max_connections: args.max_connections,
                        env: EnvOptions {
                            server_url: private.as_ref().map(|(pg, _)| pg.server_url()),
                            worker_pooler_url: args.worker_pgbouncer.clone(),
                            worker_env: pool
                                .map(|n| {
                                    ("CONNECTOR_WORKER_DB_CONNECTIONS".to_owned(), n.to_string())
                                })
                                .into_iter()
                                .collect(),
                        },
                    };
                    let started = Instant::now();
                    let kv = opts.kv();
                    let mut run = Run {
                        bins,
                        workers,
                        scale,
                        floor_per_s,
                        opts,
                    };
                    match name.as_str() {
                        "a-import" => import(&run, true, name).await?,
                        "c-import" => import(&run, false, name).await?,
                        "b-deals" => deals(&run, true, name).await?,
                        "c-deals" => deals(&run, false, name).await?,
                        "floor" => floor_scenario(&mut run, name).await?,
                        "d-portals" => bench::portals::run(bins, workers, scale, name).await?,
                        other => anyhow::bail!("unknown scenario {other}"),
                    }
                    floor_per_s = run.floor_per_s;
                    eprintln!(
                        "  ({name} with {workers} worker(s), {kv} took {:.0} s)",
                        started.elapsed().as_secs_f64()
                    );
                }
            }
        }
        Ok(())
    }
    .await;
    if let Some((pg, dir)) = private {
        let _ = pg.stop().await;
        let _ = std::fs::remove_dir_all(dir);
    }
    result
}

/// An import in the busy portal while the nine others trickle.
async fn import(run: &Run<'_>, limits: bool, name: &str) -> anyhow::Result<()> {
    let (bins, workers) = (run.bins, run.workers);
    let n = import_size(run.scale);
    let mut env = PipelineEnv::start_with(
        bins,
        workers,
        limits,
        Triggers::ContactCreation,
        &run.opts.env,
    )
    .await?;
    let load = load_average();
    let probe = env.cpu_probe();
    let cpu_before = probe.read();
    let hs = env.sandbox.hubspot().clone();
    let stop = tokio_util::sync::CancellationToken::new();
    let trickle = {
        let (hs, stop) = (hs.clone(), stop.clone());
        tokio::spawn(async move {
            let mut created = 0u64;
            let mut tick = tokio::time::interval(Duration::from_millis(500));
            while !stop.is_cancelled() {
                tick.tick().await;
                for p in quiet_portals() {
                    let made = on_sandbox(|| {
                        hs.create_contact(
                            p,
                            [
                                ("lifecyclestage", "lead".to_owned()),
                                ("custom_impact_click_id", format!("click-{created}")),
                            ],
                        )
                    });
                    if made.is_ok() {
                        created += 1;
                    }
                }
            }
            created
        })
    };
    on_sandbox(|| hs.import_contacts(BUSY, n))?;
    let timeout = if limits {
        Duration::from_secs_f64(n as f64 / 500.0 + 120.0)
    } else {
        Duration::from_secs_f64(n as f64 / 100.0 + 120.0)
    };
    let busy = wait_for(&env, &[BUSY], n as i64, timeout).await?;
    stop.cancel();
    let trickled = trickle.await?;
    let expected = n as i64 + trickled as i64;
    let all = env
        .wait_delivered(expected, Duration::from_secs(60))
        .await?;
    let cpu = CpuPerConversion::between(cpu_before, probe.read(), all.max(0) as u64);
    let quiet = env.measure(&quiet_portals()).await?;
    let busy_calls = env.hubspot_calls(&[BUSY]);
    let quiet_calls = env.hubspot_calls(&quiet_portals());
    let limited = env.rate_limited(&[BUSY]) + env.rate_limited(&quiet_portals());
    let rss = env.peak_rss();
    let own_rss = bench::peak_rss_kb(std::process::id());
    env.finish().await?;
    // The quota: 110 calls per 10 s, 100 contacts per call.
    let ceiling = limits.then_some(CALLS_PER_10S / 10.0 * PER_CALL);
    report(
        name,
        workers,
        &busy,
        busy_calls,
        ceiling,
        rss,
        own_rss,
        &load,
        &format!(
            "imported={n} quiet_conversions={} quiet_p50_ms={:.0} quiet_p99_ms={:.0} quiet_hubspot_calls={quiet_calls} rate_limited_429={limited} {} {} {}",
            quiet.conversions,
            quiet.p50_ms,
            quiet.p99_ms,
            ratio_to_floor(run, &busy),
            cpu.keys(),
            run.opts.kv()
        ),
    );
    Ok(())
}

/// Deal stage changes in the busy portal: with limits, offered at 400
/// conversions/s (above the quota's ceiling) for 60 s × scale; without, all
/// at once.
async fn deals(run: &Run<'_>, limits: bool, name: &str) -> anyhow::Result<()> {
    let (bins, workers, scale) = (run.bins, run.workers, run.scale);
    let mut env =
        PipelineEnv::start_with(bins, workers, limits, Triggers::DealStage, &run.opts.env).await?;
    let load = load_average();
    let probe = env.cpu_probe();
    let cpu_before = probe.read();
    let hs = env.sandbox.hubspot().clone();
    let stages = ["qualifiedtobuy", "closedwon"];
    let seconds = ((60.0 * scale).round() as usize).max(10);
    let per_second = 200; // deals; × 2 stages = 400 conversions/s
    let total = seconds * per_second;
    if limits {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        for _ in 0..seconds {
            tick.tick().await;
            on_sandbox(|| hs.deal_stage_stream(BUSY, per_second, &stages))?;
        }
    } else {
        on_sandbox(|| hs.deal_stage_stream(BUSY, total, &stages))?;
    }
    let expected = (total * stages.len()) as i64;
    let timeout = Duration::from_secs_f64(expected as f64 / 200.0 + 120.0);
    let m = wait_for(&env, &[BUSY], expected, timeout).await?;
    let cpu = CpuPerConversion::between(cpu_before, probe.read(), m.conversions);
    let calls = env.hubspot_calls(&[BUSY]);
    let limited = env.rate_limited(&[BUSY]);
    let rss = env.peak_rss();
    let own_rss = bench::peak_rss_kb(std::process::id());
    env.finish().await?;
    let ceiling = limits.then_some(CALLS_PER_10S / 10.0 * PER_CALL / DEAL_CALLS_PER_BATCH);
    report(
        name,
        workers,
        &m,
        calls,
        ceiling,
        rss,
        own_rss,
        &load,
        &format!(
            "deals={total} expected={expected} offered_per_s={} rate_limited_429={limited} {} {} {}",
            if limits {
                (per_second * stages.len()).to_string()
            } else {
                "all_at_once".into()
            },
            ratio_to_floor(run, &m),
            cpu.keys(),
            run.opts.kv()
        ),
    );
    Ok(())
}

/// The contacts `a-import`, `c-import` and `floor` convert.
fn import_size(scale: f64) -> usize {
    ((100_000.0 * scale) as usize).max(100)
}

/// `ratio_to_floor=`: the scenario's rate over the floor's of this run.
fn ratio_to_floor(run: &Run<'_>, m: &Measured) -> String {
    match run.floor_per_s {
        Some(f) if f > 0.0 => format!("ratio_to_floor={:.2}", m.rate() / f),
        _ => "ratio_to_floor=none".to_owned(),
    }
}

/// The least work of `c-import`'s conversions on the same services
/// (`tools::bench::floor`), with limits and latency off.
async fn floor_scenario(run: &mut Run<'_>, name: &str) -> anyhow::Result<()> {
    let n = import_size(run.scale);
    let sandbox = start_sandbox(sandbox::SandboxConfig {
        portals: vec![sandbox::PortalSeed::sized(BUSY, 10)],
        rate_limit_per_10s: None,
        ..sandbox::SandboxConfig::default()
    })
    .await?;
    let settings = tools::support::test_settings();
    let database_url = tools::support::fresh_database().await?;
    let pool = shared::db::connect(&database_url, 16).await?;
    let load = load_average();
    let ids = on_sandbox(|| sandbox.hubspot().import_contacts(BUSY, n))?;
    let probe = CpuProbe {
        database: database_name(&database_url),
        ..CpuProbe::default()
    };
    let before = probe.read();
    let defaults = shared::config::Settings::defaults();
    let target = FloorTarget {
        hubspot_url: &sandbox.hubspot_url(),
        impact_url: &sandbox.impact_url(),
        amqp_url: &settings.amqp_url,
        pool: &pool,
        portal: BUSY,
        messages_at_once: defaults.worker_concurrency,
        posts_at_once: defaults.delivery_concurrency(WORKER_MAX_FLUSHING),
    };
    let result = floor::run(&target, &ids).await;
    let cpu = CpuPerConversion::between(
        before,
        probe.read(),
        result.as_ref().map_or(1, |r| r.conversions),
    );
    pool.close().await;
    tools::support::drop_database(&database_url).await;
    sandbox.shutdown().await;
    let r = result?;
    let rate = r.conversions as f64 / r.span_s.max(0.001);
    run.floor_per_s = Some(rate);
    println!(
        "{name}: {rate:.0} conversions/s ({} in {:.1} s): one confirmed message per 100 events, one batch read per 100, one POST per conversion ({} at once), one row per conversion in batches of 100",
        r.conversions, r.span_s, target.posts_at_once
    );
    println!(
        "RESULT scenario={name} conversions={} seconds={:.1} conversions_per_s={rate:.0} floor_per_s={rate:.0} posts_at_once={} load=\"{load}\" {}",
        r.conversions,
        r.span_s,
        target.posts_at_once,
        cpu.keys()
    );
    Ok(())
}

/// Waits for `expected` conversions of `portals`, then measures them.
async fn wait_for(
    env: &PipelineEnv,
    portals: &[u64],
    expected: i64,
    timeout: Duration,
) -> anyhow::Result<Measured> {
    let started = Instant::now();
    let mut last = Instant::now();
    // Polled with a count, and the latencies computed once at the end:
    // recomputing them every poll took PostgreSQL ~130 ms of CPU each time,
    // taken from the pipeline being measured. The count scans the table too
    // (~50 ms at 100,000 rows), so it is polled about when the rest should
    // be done at the pace so far, between every 250 ms and every 3 s. The
    // figures come from the rows' timestamps, not from when a poll saw them.
    // Before that, while the fake impact.com has accepted fewer
    // conversions than expected in all (an in-memory count), the rows
    // cannot all be delivered: the database is not asked at all.
    let mut prev = (0i64, Instant::now());
    loop {
        let accepted = env.sandbox.impact().accepted_conversions() as i64;
        let delivered = if accepted < expected && started.elapsed() <= timeout {
            accepted
        } else {
            env.delivered_of(portals).await?
        };
        if delivered >= expected {
            return env.measure(portals).await;
        }
        if started.elapsed() > timeout {
            eprintln!("  timed out: {delivered}/{expected} conversions delivered");
            return env.measure(portals).await;
        }
        if last.elapsed() > Duration::from_secs(10) {
            last = Instant::now();
            eprintln!(
                "  ... {delivered}/{expected} delivered after {:.0} s, load {}",
                started.elapsed().as_secs_f64(),
                load_average()
            );
        }
        let pace = (delivered - prev.0) as f64 / prev.1.elapsed().as_secs_f64().max(0.001);
        prev = (delivered, Instant::now());
        let rest = if pace > 0.0 {
            (expected - delivered) as f64 / pace
        } else {
            0.5
        };
        tokio::time::sleep(Duration::from_secs_f64(rest.clamp(0.25, 3.0))).await;
    }
}

#[allow(clippy::too_many_arguments)]
fn report(
    name: &str,
    workers: usize,
    m: &Measured,
    calls: u64,
    ceiling: Option<f64>,
    rss: PeakRss,
    own_kb: u64,
    load: &str,
    extra: &str,
) {
    let rate = m.rate();
    let per_conv = if m.conversions > 0 {
        calls as f64 / m.conversions as f64
    } else {
        0.0
    };
    let mib = |kb: u64| kb as f64 / 1024.0;
    let workers_mib: Vec<String> = rss
        .workers_kb
        .iter()
        .map(|k| format!("{:.1}", mib(*k)))
        .collect();
    let kb_text = |kb: Option<u64>| kb.map_or("unknown".to_owned(), |k| k.to_string());
    // "412.0 MiB (398.1 at start)"
    let service = |start: Option<u64>, peak: Option<u64>| match (start, peak) {
        (Some(s), Some(p)) => format!("{:.1} MiB ({:.1} at start)", mib(p), mib(s)),
        _ => "unknown".to_owned(),
    };
    let (start, peak) = (rss.services.start, rss.services.peak);
    let rabbit = service(start.rabbitmq_kb, peak.rabbitmq_kb);
    let pg = service(start.postgres_kb, peak.postgres_kb);
    let services_kv = format!(
        "rabbitmq_peak_rss_kb={} rabbitmq_start_rss_kb={} postgres_peak_pss_kb={} postgres_start_pss_kb={}",
        kb_text(peak.rabbitmq_kb),
        kb_text(start.rabbitmq_kb),
        kb_text(peak.postgres_kb),
        kb_text(start.postgres_kb),
    );
    let ingest_kb = rss.ingest_kb;
    let (ceiling_text, ratio) = match ceiling {
        Some(c) => (format!("{c:.0}"), format!("{:.2}", rate / c)),
        None => ("none".to_owned(), "none".to_owned()),
    };
    println!(
        "{name} ({workers} worker(s)): {rate:.0} conversions/s ({} in {:.1} s), {per_conv:.4} HubSpot calls/conversion, latency p50 {:.0} ms p99 {:.0} ms, quota ceiling {ceiling_text}/s (ratio {ratio}), peak RSS ingest {:.1} MiB, worker(s) {} MiB, sandbox+driver {:.1} MiB, RabbitMQ {rabbit}, PostgreSQL (PSS) {pg}; {extra}",
        m.conversions,
        m.span_s,
        m.p50_ms,
        m.p99_ms,
        mib(ingest_kb),
        workers_mib.join("/"),
        mib(own_kb),
    );
    let worker_rss = rss
        .workers_kb
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(",");
    println!(
        "RESULT scenario={name} workers={workers} conversions={} seconds={:.1} conversions_per_s={rate:.0} hubspot_calls={calls} calls_per_conversion={per_conv:.4} p50_ms={:.0} p99_ms={:.0} ceiling_per_s={ceiling_text} ratio_to_ceiling={ratio} ingest_peak_rss_kb={ingest_kb} worker_peak_rss_kb={worker_rss} sandbox_peak_rss_kb={own_kb} {services_kv} load=\"{load}\" {extra}",
        m.conversions, m.span_s, m.p50_ms, m.p99_ms,
    );
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}
