//! The faults of a run: what happens when (a seeded schedule), and how
//! each one is done to the processes, the private services and the fakes.

use std::{collections::HashMap, sync::Arc, time::Duration};

use rand::{Rng, rngs::StdRng};
use tokio::sync::Mutex;

use super::{
    FaultConfig,
    cluster::RabbitCluster,
    failover,
    postgres::PrivatePostgres,
    procs::{Proc, wait_stopped},
    report::FaultCounts,
};
use sandbox::{FakeHubSpot, FakeImpact, FaultPlan, Sandbox, impact::Fault as ImpactFault};

/// Longer than the worker's 20 s HTTP timeout: a slow answer is a timeout.
pub(super) const TIMEOUT_DELAY: Duration = Duration::from_secs(25);

/// How long a killed cluster node stays down.
const NODE_DOWN: Duration = Duration::from_secs(15);

/// What happens, and when (as a share of the run's duration).
#[derive(Debug, Clone, Copy)]
pub(super) enum Fault {
    KillWorker(usize),
    RestartRabbit,
    /// SIGKILL of the cluster node leading the work queue, back after [`NODE_DOWN`].
    KillLeader,
    CrashPostgres,
    HubSpot429(bool),
    ImpactFailing(bool),
    RestartIngest,
    RestartWorkerGracefully(usize),
}

pub(super) fn schedule(cfg: &FaultConfig, rng: &mut StdRng) -> Vec<(f64, Fault)> {
    let broker = if cfg.cluster > 1 {
        Fault::KillLeader
    } else {
        Fault::RestartRabbit
    };
    let mut plan: Vec<(f64, Fault)> = vec![
        (0.20, broker),
        (0.30, Fault::HubSpot429(true)),
        (0.45, Fault::CrashPostgres),
        (0.50, Fault::HubSpot429(false)),
        (0.55, Fault::ImpactFailing(true)),
        (0.65, Fault::RestartIngest),
        (0.75, Fault::RestartWorkerGracefully(0)),
        (0.95, Fault::ImpactFailing(false)),
    ];
    for _ in 0..cfg.kills {
        let at = rng.random_range(0.05..0.9);
        plan.push((at, Fault::KillWorker(rng.random_range(0..cfg.workers))));
    }
    plan.sort_by(|a, b| a.0.total_cmp(&b.0));
    plan
}

/// The fake services' handles a fault task needs.
pub(super) fn sandbox_handles(sandbox: &Sandbox) -> (FakeHubSpot, FakeImpact) {
    (sandbox.hubspot().clone(), sandbox.impact().clone())
}

/// What a fault task acts on.
pub(super) struct Injector {
    pub(super) workers: Arc<Mutex<Vec<Proc>>>,
    pub(super) ingest: Arc<Mutex<Proc>>,
    pub(super) rabbit: Arc<Mutex<RabbitCluster>>,
    /// The work queue's name (its leader is killed).
    pub(super) work_queue: String,
    /// impact.com account of each portal.
    pub(super) account_of: HashMap<u64, String>,
    pub(super) pg: Arc<PrivatePostgres>,
    pub(super) sandbox: (FakeHubSpot, FakeImpact),
    pub(super) counts: Arc<Mutex<FaultCounts>>,
}

impl Injector {
    pub(super) async fn inject(self, fault: Fault) -> anyhow::Result<()> {
        let (hs, imp) = &self.sandbox;
        match fault {
            Fault::KillWorker(i) => {
                self.workers.lock().await[i].kill().await?;
                self.counts.lock().await.sigkills += 1;
            }
            Fault::RestartRabbit => {
                self.rabbit.lock().await.nodes[0]
                    .restart(Duration::from_secs(3))
                    .await?;
                self.counts.lock().await.rabbit_restarts += 1;
            }
            Fault::KillLeader => self.kill_leader().await?,
            Fault::CrashPostgres => {
                self.pg.crash_and_restart(Duration::from_secs(3)).await?;
                self.counts.lock().await.postgres_crashes += 1;
            }
            Fault::HubSpot429(on) => hs.set_rate_limit(Some(if on { 10 } else { 110 })),
            Fault::ImpactFailing(true) => {
                // The next posts meet each fault for sure, whatever the
                // backlog; then a share of all posts fails until the end.
                imp.fail_next([
                    ImpactFault::ServerError(503),
                    ImpactFault::RateLimited,
                    ImpactFault::DropAfterProcessing,
                    ImpactFault::SlowMs(TIMEOUT_DELAY.as_millis() as u64),
                    ImpactFault::Drop,
                    ImpactFault::ServerError(500),
                ]);
                imp.set_faults(FaultPlan {
                    rate_limited: 0.15,
                    server_error: 0.25,
                    server_error_status: 502,
                    dropped: 0.03,
                    dropped_after_processing: 0.03,
                    slow: 0.03,
                    slow_delay: TIMEOUT_DELAY,
                });
            }
            // The share stops; the sure faults above stay queued until met.
            Fault::ImpactFailing(false) => imp.set_faults(FaultPlan::default()),
            Fault::RestartIngest => {
                let draining = self.ingest.lock().await.begin_stop();
                self.finish_stop(draining, Duration::from_secs(30)).await?;
            }
            Fault::RestartWorkerGracefully(i) => {
                // The supervisor starts a new worker while the old one
                // drains: a rolling restart.
                let draining = self.workers.lock().await[i].begin_stop();
                self.finish_stop(draining, Duration::from_secs(40)).await?;
            }
        }
        Ok(())
    }

    /// Kills the work queue's leader, watches the failover, brings the
    /// node back.
    async fn kill_leader(&self) -> anyhow::Result<()> {
        let (hs, imp) = &self.sandbox;
        let mut cluster = self.rabbit.lock().await;
        let i = cluster.leader_of(&self.work_queue).await?;
        let before = failover::Before::now(hs, imp);
        cluster.nodes[i].kill().await?;
        println!(
            "  killed {} (SIGKILL), the leader of {}",
            cluster.nodes[i].node(),
            self.work_queue
        );
        let watch = tokio::spawn(failover::watch(
            hs.clone(),
            imp.clone(),
            self.account_of.clone(),
            before,
        ));
        tokio::time::sleep(NODE_DOWN).await;
        cluster.bring_back(i).await?;
        println!("  {} is back", cluster.nodes[i].node());
        let f = watch.await?;
        match cluster.leader_of(&self.work_queue).await {
            Ok(l) => println!(
                "  {} now leads {}",
                cluster.nodes[l].node(),
                self.work_queue
            ),
            Err(e) => println!("  no leader of {} reported: {e:#}", self.work_queue),
        }
        let mut c = self.counts.lock().await;
        c.leader_kills += 1;
        c.failover = Some(f);
        Ok(())
    }

    async fn finish_stop(
        &self,
        child: Option<tokio::process::Child>,
        grace: Duration,
    ) -> anyhow::Result<()> {
        let clean = wait_stopped(child, grace).await?;
        let mut c = self.counts.lock().await;
        c.graceful_stops += 1;
        c.unclean_stops += u32::from(!clean);
        Ok(())
    }
}
