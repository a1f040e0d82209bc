//! `cargo run --release --bin bench-ingest`: signed batches of 100 events
//! against ingest (the `ingest` executable, a separate process) and RabbitMQ on loopback, at HubSpot's
//! default concurrency of 10 and a higher one, plus the bare broker ceiling
//! (one persistent, confirmed message per event). With `--portal-secrets N`,
//! each concurrency level runs a second time with N portals' own webhook
//! secrets loaded (a secrets file), each request signed with its portal's.
//! Prints a table and one `RESULT scenario=<name> key=value ...` line per
//! result.

use std::time::{Duration, Instant};

use clap::Parser;
use tools::{
    bench::{self, Signing},
    binaries::Binaries,
    support,
};

/// Ingest throughput and latency benchmark.
#[derive(Parser)]
struct Args {
    /// Seconds each scenario runs.
    #[arg(long, default_value_t = 10)]
    duration_secs: u64,
    /// Concurrency levels (requests in flight).
    #[arg(long, value_delimiter = ',', default_value = "10,64")]
    concurrency: Vec<usize>,
    /// Events per request (HubSpot sends at most 100).
    #[arg(long, default_value_t = 100)]
    batch: usize,
    /// Also run each level with this many portals' own webhook secrets
    /// loaded (at least the highest concurrency; 0: not).
    #[arg(long, default_value_t = 0)]
    portal_secrets: u64,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    shared::tls::install_crypto_provider();
    let bins = Binaries::ensure(&["ingest"])?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(run(args, &bins))
}

async fn run(args: Args, bins: &Binaries) -> anyhow::Result<()> {
    let duration = Duration::from_secs(args.duration_secs);
    println!(
        "bench-ingest: {} s per scenario, {} events per request, {} cores",
        args.duration_secs,
        args.batch,
        bench::cores()
    );

    let ceiling = bench::broker_ceiling(&support::amqp_url(), duration).await?;
    println!("broker ceiling (one persistent confirmed message per event): {ceiling:.0} events/s");
    println!("RESULT scenario=broker-ceiling events_per_s={ceiling:.0}");

    let max_c = args.concurrency.iter().copied().max().unwrap_or(0) as u64;
    anyhow::ensure!(
        args.portal_secrets == 0 || args.portal_secrets >= max_c,
        "--portal-secrets must be at least the highest concurrency ({max_c}): each connection sends for a portal of its own"
    );
    for &c in &args.concurrency {
        scenario(&args, bins, c, None, duration, ceiling).await?;
        if args.portal_secrets > 0 {
            scenario(&args, bins, c, Some(args.portal_secrets), duration, ceiling).await?;
        }
    }
    Ok(())
}

/// One load run at concurrency `c`, with `secrets` portals' own secrets
/// loaded (signing each request with its portal's) or the default secret.
async fn scenario(
    args: &Args,
    bins: &Binaries,
    c: usize,
    secrets: Option<u64>,
    duration: Duration,
    ceiling: f64,
) -> anyhow::Result<()> {
    let mut settings = support::test_settings();
    settings.log = "warn".into();
    let file =
        std::env::temp_dir().join(format!("bench-webhook-secrets-{}", settings.queue_prefix));
    let (signing, name) = match secrets {
        Some(n) => {
            bench::write_secrets_file(&file, n)?;
            settings.webhook_secrets_file = Some(file.display().to_string());
            (Signing::PerPortal, format!("ingest-secrets{n}-c{c}"))
        }
        None => (
            Signing::Default(support::TEST_SECRET.to_owned()),
            format!("ingest-c{c}"),
        ),
    };
    let child = bench::IngestChild::spawn(bins, &settings).await?;
    let started = Instant::now();
    let load =
        bench::drive_webhooks(&child.webhook_url(), &signing, c, args.batch, duration).await?;
    let elapsed = started.elapsed();
    let rss_kb = child.peak_rss_kb();
    child.stop().await?;
    support::drop_topology(&settings).await?;
    if secrets.is_some() {
        std::fs::remove_file(&file)?;
    }
    let eps = load.events as f64 / elapsed.as_secs_f64();
    println!(
        "{name}: {eps:.0} events/s ({} requests, {} refused), ack latency p50 {:.1} ms p99 {:.1} ms, ingest peak RSS {:.1} MiB, {:.2}x the broker ceiling",
        load.requests,
        load.failures,
        load.p50_ms(),
        load.p99_ms(),
        rss_kb as f64 / 1024.0,
        eps / ceiling
    );
    println!(
        "RESULT scenario={name} concurrency={c} batch={} portal_secrets={} events_per_s={eps:.0} requests={} failures={} p50_ms={:.2} p99_ms={:.2} ingest_peak_rss_kb={rss_kb} ceiling_events_per_s={ceiling:.0} ratio_to_ceiling={:.2}",
        args.batch,
        secrets.unwrap_or(0),
        load.requests,
        load.failures,
        load.p50_ms(),
        load.p99_ms(),
        eps / ceiling
    );
    Ok(())
}
