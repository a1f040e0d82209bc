//! A scale-down under load (what Kubernetes' autoscaler does to workers):
//! four `worker` processes consume a stream of deal stage changes through
//! the sandbox with HubSpot's rate limit and latencies on, three of them get
//! SIGTERM at once while they hold messages, and the last one finishes the
//! stream. Every conversion reaches impact.com exactly once: the stopped
//! workers finished or returned what they held, nothing was lost, nothing
//! doubled, nothing dead-lettered. The executables are built first (see
//! `tools::binaries`), like the fault suite.

use std::{collections::HashMap, time::Duration};

use tools::{
    bench::pipeline::{BUSY, PipelineEnv, Triggers},
    binaries::Binaries,
};

/// Deals streamed per second, and for how long (two stages each).
const DEALS_PER_S: usize = 60;
const SECONDS: usize = 8;
const STAGES: [&str; 2] = ["qualifiedtobuy", "closedwon"];

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn scaling_four_workers_down_to_one_under_load_loses_and_doubles_nothing()
-> anyhow::Result<()> {
    shared::tls::install_crypto_provider();
    let bins = tokio::task::spawn_blocking(|| Binaries::ensure(&["worker", "ingest"])).await??;
    let mut env = PipelineEnv::start(&bins, 4, true, Triggers::DealStage).await?;
    let hs = env.sandbox.hubspot().clone();
    let expected = (DEALS_PER_S * SECONDS * STAGES.len()) as i64;
    let stream = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        for _ in 0..SECONDS {
            tick.tick().await;
            hs.deal_stage_stream(BUSY, DEALS_PER_S, &STAGES)?;
        }
        anyhow::Ok(())
    });

    // Under load: some delivered, more coming.
    let started = std::time::Instant::now();
    while env.delivered().await? < expected / 8 {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(60),
            "no load reached the workers"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let before = env.delivered().await?;
    let stopping: Vec<_> = env.workers.drain(1..).collect();
    let stops = futures::future::join_all(
        stopping
            .into_iter()
            .map(|w| w.stop_within(Duration::from_secs(40))),
    )
    .await;
    for (i, stopped) in stops.into_iter().enumerate() {
        assert!(
            stopped?,
            "worker {i} did not stop by itself at SIGTERM (killed, or exited non-zero)"
        );
    }
    stream.await??;
    assert!(
        before < expected,
        "the scale-down happened under load ({before}/{expected} delivered)"
    );

    let delivered = env
        .wait_delivered(expected, Duration::from_secs(120))
        .await?;
    let dead: i64 = sqlx::query_scalar("SELECT count(*) FROM dead_letters")
        .fetch_one(&env.pool)
        .await?;
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM conversions")
        .fetch_one(&env.pool)
        .await?;
    // impact.com credited each order once (a resend it recognised as a
    // duplicate credits nothing).
    let mut credited: HashMap<String, usize> = HashMap::new();
    for s in env.sandbox.impact().conversions() {
        if s.accepted() && !s.is_duplicate() {
            *credited
                .entry(s.param("OrderId").unwrap_or_default().to_owned())
                .or_default() += 1;
        }
    }
    let doubled: Vec<_> = credited.iter().filter(|(_, n)| **n > 1).collect();
    env.finish().await?;
    assert_eq!(delivered, expected, "lost: {}", expected - delivered);
    assert_eq!(rows, expected, "one conversion row per stage change");
    assert_eq!(credited.len() as i64, expected, "every order credited");
    assert!(doubled.is_empty(), "credited twice: {doubled:?}");
    assert_eq!(dead, 0, "nothing dead-lettered");
    Ok(())
}
