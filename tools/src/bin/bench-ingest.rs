//! `cargo run --release --bin bench-ingest`: signed batches of 100 events
//! against ingest (the `ingest` executable, a separate process) and RabbitMQ on loopback, at HubSpot's
//! default concurrency of 10 and a higher one, plus the bare broker ceiling
//! (one persistent, confirmed message per event). Prints a table and one
//! `RESULT scenario=<name> key=value ...` line per result.

use std::time::{Duration, Instant};

use clap::Parser;
use tools::{bench, binaries::Binaries, support};

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

    for &c in &args.concurrency {
        let mut settings = support::test_settings();
        settings.log = "warn".into();
        let child = bench::IngestChild::spawn(bins, &settings).await?;
        let started = Instant::now();
        let load = bench::drive_webhooks(
            &child.webhook_url(),
            support::TEST_SECRET,
            c,
            args.batch,
            duration,
        )
        .await?;
        let elapsed = started.elapsed();
        let rss_kb = child.peak_rss_kb();
        child.stop().await?;
        support::drop_topology(&settings).await?;
        let eps = load.events as f64 / elapsed.as_secs_f64();
        let name = format!("ingest-c{c}");
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
            "RESULT scenario={name} concurrency={c} batch={} events_per_s={eps:.0} requests={} failures={} p50_ms={:.2} p99_ms={:.2} ingest_peak_rss_kb={rss_kb} ceiling_events_per_s={ceiling:.0} ratio_to_ceiling={:.2}",
            args.batch,
            load.requests,
            load.failures,
            load.p50_ms(),
            load.p99_ms(),
            eps / ceiling
        );
    }
    Ok(())
}
