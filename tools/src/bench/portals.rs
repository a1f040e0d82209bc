//! The `d-portals` scenario of `bench-pipeline`: 50 portals at once, each
//! under its own HubSpot budget (the fake's per-portal rate limit and
//! latency on), each importing contacts and moving deals through two
//! stages, all offered at once. Prints the aggregate conversions/s, the
//! slowest portal's share (its rate over the mean portal's: 1.0 is fair)
//! and each portal's p99 latency (the worst and the median of them).

use std::time::{Duration, Instant};

use crate::{
    bench::{
        cpu::{CpuPerConversion, on_sandbox},
        pipeline::{Measured, PipelineEnv, Triggers},
    },
    binaries::Binaries,
};

/// Portals of the scenario.
pub const PORTALS: u64 = 50;
/// The first of them.
pub const FIRST: u64 = 2001;

/// Runs the scenario with `workers` workers at `scale` (1.0: 400 contacts
/// and 100 deals × 2 stages, each deal with a contact of its own, per
/// portal: 35,000 conversions).
pub async fn run(bins: &Binaries, workers: usize, scale: f64, name: &str) -> anyhow::Result<()> {
    let portals: Vec<u64> = (FIRST..FIRST + PORTALS).collect();
    let contacts = ((400.0 * scale) as usize).max(10);
    let deals = ((100.0 * scale) as usize).max(5);
    let stages = ["qualifiedtobuy", "closedwon"];
    // Each deal of the stream comes with a new contact of its own, which
    // the contact-creation trigger converts too: a deal is stages + 1.
    let per_portal = (contacts + deals * (stages.len() + 1)) as i64;
    let expected = per_portal * PORTALS as i64;
    let mut env = PipelineEnv::start_portals(
        bins,
        workers,
        true,
        Triggers::Both,
        &portals,
        &Default::default(),
    )
    .await?;
    let probe = env.cpu_probe();
    let before = probe.read();
    let hs = env.sandbox.hubspot().clone();
    on_sandbox(|| {
        for &p in &portals {
            hs.import_contacts(p, contacts)?;
        }
        for &p in &portals {
            hs.deal_stage_stream(p, deals, &stages)?;
        }
        anyhow::Ok(())
    })?;
    let started = Instant::now();
    let timeout = Duration::from_secs_f64(expected as f64 / 100.0 + 120.0);
    // Until every portal has all its conversions delivered (the total
    // alone is not enough: duplicate events make it pass early).
    // The database is asked only once the fake impact.com has accepted as
    // many conversions as expected in all (an in-memory count): each count
    // scans the table, PostgreSQL CPU charged to the pipeline.
    loop {
        let accepted = env.sandbox.impact().accepted_conversions() as i64;
        if accepted < expected && started.elapsed() <= timeout {
            tokio::time::sleep(Duration::from_millis(250)).await;
            continue;
        }
        let ids: Vec<i64> = portals.iter().map(|p| *p as i64).collect();
        let complete: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM (SELECT portal_id FROM conversions
                 WHERE status = 'delivered' AND portal_id = ANY($1)
                 GROUP BY portal_id HAVING count(*) >= $2) AS done",
        )
        .bind(&ids)
        .bind(per_portal)
        .fetch_one(&env.pool)
        .await?;
        if complete >= PORTALS as i64 {
            break;
        }
        if started.elapsed() > timeout {
            eprintln!("  timed out: {complete}/{PORTALS} portals complete");
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let all = env.measure(&portals).await?;
    let cpu = CpuPerConversion::between(before, probe.read(), all.conversions);
    let each = env.measure_each(&portals).await?;
    let calls = env.hubspot_calls(&portals);
    let limited = env.rate_limited(&portals);
    let _ = env.peak_rss();
    env.finish().await?;
    let f = Fairness::of(&all, &each, per_portal as u64);
    println!(
        "{name} ({workers} worker(s)): {} portals, {:.0} conversions/s ({} of {expected} in {:.1} s), slowest portal {:.2} of the mean portal's rate, p99 per portal: worst {:.0} ms, median {:.0} ms; {calls} HubSpot calls, {limited} answered 429",
        PORTALS,
        all.rate(),
        all.conversions,
        all.span_s,
        f.slowest_share,
        f.p99_worst_ms,
        f.p99_median_ms,
    );
    println!(
        "RESULT scenario={name} workers={workers} portals={PORTALS} conversions={} expected={expected} seconds={:.1} conversions_per_s={:.0} slowest_portal_share={:.2} portals_complete={} p50_ms={:.0} p99_ms={:.0} p99_ms_worst_portal={:.0} p99_ms_median_portal={:.0} hubspot_calls={calls} rate_limited_429={limited} {}",
        all.conversions,
        all.span_s,
        all.rate(),
        f.slowest_share,
        f.complete,
        all.p50_ms,
        all.p99_ms,
        f.p99_worst_ms,
        f.p99_median_ms,
        cpu.keys()
    );
    Ok(())
}

/// Fairness across portals.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fairness {
    /// The slowest portal's rate over the mean portal's (aggregate / portals).
    pub slowest_share: f64,
    /// The highest of the portals' p99 latencies.
    pub p99_worst_ms: f64,
    /// The median of the portals' p99 latencies.
    pub p99_median_ms: f64,
    /// Portals whose every conversion was delivered.
    pub complete: usize,
}

impl Fairness {
    /// From the aggregate `all` and each portal's measurement.
    pub fn of(all: &Measured, each: &[Measured], per_portal: u64) -> Self {
        let mean = all.rate() / each.len().max(1) as f64;
        let slowest = each
            .iter()
            .map(Measured::rate)
            .fold(f64::INFINITY, f64::min);
        let mut p99: Vec<f64> = each.iter().map(|m| m.p99_ms).collect();
        p99.sort_by(f64::total_cmp);
        Self {
            slowest_share: if mean > 0.0 && slowest.is_finite() {
                slowest / mean
            } else {
                0.0
            },
            p99_worst_ms: p99.last().copied().unwrap_or(0.0),
            p99_median_ms: p99.get(p99.len() / 2).copied().unwrap_or(0.0),
            complete: each.iter().filter(|m| m.conversions >= per_portal).count(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(conversions: u64, span_s: f64, p99_ms: f64) -> Measured {
        Measured {
            conversions,
            span_s,
            p50_ms: 0.0,
            p99_ms,
        }
    }

    #[test]
    fn the_slowest_portal_is_compared_with_the_mean_portal() {
        // Two portals of 100: one done in 1 s, the other in 2 s; all in 2 s.
        let all = m(200, 2.0, 900.0);
        let each = [m(100, 1.0, 300.0), m(100, 2.0, 900.0), m(50, 2.0, 500.0)];
        let f = Fairness::of(&all, &each, 100);
        // Mean portal: 100/3 per s; slowest: 25 per s.
        assert!((f.slowest_share - 0.75).abs() < 1e-9, "{f:?}");
        assert_eq!((f.p99_worst_ms, f.p99_median_ms), (900.0, 500.0));
        assert_eq!(f.complete, 2);
    }
}
