//! One fault-suite run: set up, load, faults on a seeded schedule, settle,
//! reconcile.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use rand::{Rng, SeedableRng, rngs::StdRng};
use serde_json::{Value, json};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use super::{
    FaultConfig, Report,
    procs::{Proc, Role},
    reconcile::reconcile,
    services::{PrivatePostgres, PrivateRabbit, free_port},
};
use crate::{
    e2e::{KEY, seed_contact_mappings, seed_deal_mappings, seed_line_item_mappings},
    harness::TEST_SECRET,
    sandbox::{
        DeliveryOptions, FaultPlan, ImpactAccount, PortalSeed, Sandbox, SandboxConfig,
        WebhookTarget, impact::Fault as ImpactFault,
    },
};

/// Stages every deal of the load goes through (one conversion each).
const STAGES: [&str; 3] = ["appointmentscheduled", "qualifiedtobuy", "closedwon"];
/// Longer than the worker's 20 s HTTP timeout: a slow answer is a timeout.
const TIMEOUT_DELAY: Duration = Duration::from_secs(25);

/// What happens, and when (as a share of the run's duration).
#[derive(Debug, Clone, Copy)]
enum Fault {
    KillWorker(usize),
    RestartRabbit,
    CrashPostgres,
    HubSpot429(bool),
    ImpactFailing(bool),
    RestartIngest,
    RestartWorkerGracefully(usize),
}

fn schedule(cfg: &FaultConfig, rng: &mut StdRng) -> Vec<(f64, Fault)> {
    let mut plan: Vec<(f64, Fault)> = vec![
        (0.20, Fault::RestartRabbit),
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

/// Runs the suite; the error case is a set-up failure (e.g. no private
/// RabbitMQ), a finished run's verdict is in the [`Report`].
pub async fn run(cfg: FaultConfig) -> anyhow::Result<Report> {
    std::fs::create_dir_all(&cfg.work_dir)?;
    let dir = cfg.work_dir.clone();
    println!(
        "fault-suite: logs and private services under {}",
        dir.display()
    );
    let pg = PrivatePostgres::start(&dir).await.context(
        "cannot start a private PostgreSQL (initdb/pg_ctl) for the fault suite; \
         the shared one is never restarted",
    )?;
    let rabbit = PrivateRabbit::start(&dir).await.context(
        "cannot start a private RabbitMQ (rabbitmq-server) for the fault suite; \
         the shared one is never restarted",
    )?;
    println!(
        "fault-suite: private PostgreSQL on port {}, RabbitMQ on port {}",
        pg.port, rabbit.port
    );
    let db_url = format!("{}/postgres", pg.server_url());
    let pool = shared::db::connect(&db_url, 4).await?;
    shared::db::migrate(&pool).await?;

    let portals: Vec<u64> = (2001..2001 + cfg.portals).collect();
    let account_of: HashMap<u64, String> = portals
        .iter()
        .map(|p| (*p, format!("IRfault{p}")))
        .collect();
    let sandbox = Sandbox::start(SandboxConfig {
        seed: cfg.seed,
        portals: portals.iter().map(|p| PortalSeed::sized(*p, 4)).collect(),
        impact_accounts: portals
            .iter()
            .map(|p| ImpactAccount {
                account_sid: account_of[p].clone(),
                auth_token: format!("token-{p}"),
                program_ids: vec!["1000".into()],
            })
            .collect(),
        // HubSpot's own schedule is longer; this one outlasts every outage
        // of the run while keeping the end of the run short.
        webhook_retry_delays: [1, 2, 4, 8, 15, 30, 30, 30, 30, 30, 30, 30]
            .map(Duration::from_secs)
            .to_vec(),
        ..SandboxConfig::default()
    })
    .await?;
    let cipher = shared::crypto::SecretCipher::from_base64(KEY)?;
    for p in &portals {
        worker::cli::apply_text(&pool, &cipher, &portal_doc(*p).to_string(), "fault-suite").await?;
    }

    let ingest_port = free_port()?;
    let env = child_env(&rabbit.amqp_url(), &db_url, &sandbox, ingest_port);
    let ingest = Arc::new(Mutex::new(Proc::spawn(
        Role::Ingest,
        env.clone(),
        &dir.join("ingest.log"),
    )?));
    let mut workers = Vec::new();
    for i in 0..cfg.workers {
        workers.push(Proc::spawn(
            Role::Worker,
            env.clone(),
            &dir.join(format!("worker-{i}.log")),
        )?);
    }
    let workers = Arc::new(Mutex::new(workers));
    wait_ready(ingest_port).await?;
    let hs = sandbox.hubspot().clone();
    hs.set_webhook_target(Some(WebhookTarget::new(
        format!("http://127.0.0.1:{ingest_port}{}", ingest::WEBHOOK_PATH),
        TEST_SECRET,
    )));
    hs.set_delivery_options(DeliveryOptions {
        duplicate_share: 0.1,
        out_of_order: true,
    });

    let stop = CancellationToken::new();
    let supervisor = tokio::spawn(supervise(ingest.clone(), workers.clone(), stop.clone()));
    let load = tokio::spawn(generate_load(
        hs.clone(),
        portals.clone(),
        cfg.clone(),
        stop.clone(),
    ));

    let started = Instant::now();
    let mut rng = StdRng::seed_from_u64(cfg.seed);
    let counts = Arc::new(Mutex::new(report::FaultCounts::default()));
    let rabbit = Arc::new(Mutex::new(rabbit));
    let pg = Arc::new(pg);
    // Each fault runs on a task of its own at its moment: a slow RabbitMQ
    // restart does not push the others back.
    let mut injected = tokio::task::JoinSet::new();
    for (at, fault) in schedule(&cfg, &mut rng) {
        let when = cfg.duration.mul_f64(at);
        let f = Injector {
            workers: workers.clone(),
            ingest: ingest.clone(),
            rabbit: rabbit.clone(),
            pg: pg.clone(),
            sandbox: sandbox_handles(&sandbox),
            counts: counts.clone(),
        };
        injected.spawn(async move {
            tokio::time::sleep(when.saturating_sub(started.elapsed())).await;
            println!("  [{:6.1} s] {fault:?}", started.elapsed().as_secs_f64());
            let result = f.inject(fault).await;
            println!(
                "  [{:6.1} s] {fault:?} done",
                started.elapsed().as_secs_f64()
            );
            result
        });
    }
    while let Some(done) = injected.join_next().await {
        done??;
    }
    tokio::time::sleep(cfg.duration.saturating_sub(started.elapsed())).await;
    stop.cancel();
    load.await??;
    supervisor.await??;
    for w in workers.lock().await.iter_mut() {
        w.ensure_running()?;
    }
    ingest.lock().await.ensure_running()?;
    println!(
        "fault-suite: load and faults over after {:.0} s; settling",
        started.elapsed().as_secs_f64()
    );

    let recon = settle(&sandbox, &account_of, cfg.settle).await;
    let mut counts = counts.lock().await.clone();
    // Graceful stops at the end: in-flight work finishes, exit status 0.
    for w in workers.lock().await.iter_mut() {
        counts.graceful_stops += 1;
        counts.unclean_stops += u32::from(!w.stop(Duration::from_secs(40)).await?);
    }
    counts.graceful_stops += 1;
    counts.unclean_stops += u32::from(!ingest.lock().await.stop(Duration::from_secs(30)).await?);
    counts.worker_starts = workers.lock().await.iter().map(|w| w.starts).sum();
    let dead = report::dead_letters(&pool).await.unwrap_or_default();
    let webhooks = hs.webhook_stats();
    pool.close().await;
    sandbox.shutdown().await;
    let _ = rabbit.lock().await.stop().await;
    let _ = pg.stop().await;
    Ok(Report {
        recon,
        dead_letters: dead,
        webhooks,
        faults: counts,
        seconds: started.elapsed().as_secs_f64(),
        work_dir: dir,
    })
}

/// The fake services' handles a fault task needs.
fn sandbox_handles(sandbox: &Sandbox) -> (crate::sandbox::FakeHubSpot, crate::sandbox::FakeImpact) {
    (sandbox.hubspot().clone(), sandbox.impact().clone())
}

/// What a fault task acts on.
struct Injector {
    workers: Arc<Mutex<Vec<Proc>>>,
    ingest: Arc<Mutex<Proc>>,
    rabbit: Arc<Mutex<PrivateRabbit>>,
    pg: Arc<PrivatePostgres>,
    sandbox: (crate::sandbox::FakeHubSpot, crate::sandbox::FakeImpact),
    counts: Arc<Mutex<report::FaultCounts>>,
}

impl Injector {
    async fn inject(self, fault: Fault) -> anyhow::Result<()> {
        let (hs, imp) = &self.sandbox;
        match fault {
            Fault::KillWorker(i) => {
                self.workers.lock().await[i].kill().await?;
                self.counts.lock().await.sigkills += 1;
            }
            Fault::RestartRabbit => {
                self.rabbit
                    .lock()
                    .await
                    .restart(Duration::from_secs(3))
                    .await?;
                self.counts.lock().await.rabbit_restarts += 1;
            }
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

    async fn finish_stop(
        &self,
        child: Option<tokio::process::Child>,
        grace: Duration,
    ) -> anyhow::Result<()> {
        let clean = super::procs::wait_stopped(child, grace).await?;
        let mut c = self.counts.lock().await;
        c.graceful_stops += 1;
        c.unclean_stops += u32::from(!clean);
        Ok(())
    }
}

/// Waits until nothing is missing, or nothing moved for a while, or `limit`.
async fn settle(
    sandbox: &Sandbox,
    account_of: &HashMap<u64, String>,
    limit: Duration,
) -> super::reconcile::Reconciliation {
    let started = Instant::now();
    let (mut last, mut last_change) = (usize::MAX, Instant::now());
    let mut last_print = Instant::now();
    loop {
        let emitted = sandbox.hubspot().emitted_events();
        let r = reconcile(&emitted, account_of, &sandbox.impact().requests());
        let idle = sandbox.hubspot().webhook_stats().pending == 0;
        let moved = sandbox.impact().requests().len();
        if moved != last {
            (last, last_change) = (moved, Instant::now());
        }
        if (r.lost == 0 && idle)
            || started.elapsed() > limit
            || last_change.elapsed() > Duration::from_secs(120)
        {
            // A late resend or double would show up now.
            tokio::time::sleep(Duration::from_secs(3)).await;
            return reconcile(
                &sandbox.hubspot().emitted_events(),
                account_of,
                &sandbox.impact().requests(),
            );
        }
        if last_print.elapsed() >= Duration::from_secs(15) {
            last_print = Instant::now();
            println!(
                "  settling: {}/{} delivered, {} webhook events pending",
                r.delivered,
                r.expected,
                sandbox.hubspot().webhook_stats().pending
            );
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Restarts whatever died (killed, stopped, or failed at start-up while a
/// service was down), like a process supervisor.
async fn supervise(
    ingest: Arc<Mutex<Proc>>,
    workers: Arc<Mutex<Vec<Proc>>>,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    while !stop.is_cancelled() {
        tokio::time::sleep(Duration::from_millis(500)).await;
        ingest.lock().await.ensure_running()?;
        for w in workers.lock().await.iter_mut() {
            w.ensure_running()?;
        }
    }
    Ok(())
}

/// Every second, per portal: contacts created, deals moved through [`STAGES`].
async fn generate_load(
    hs: crate::sandbox::FakeHubSpot,
    portals: Vec<u64>,
    cfg: FaultConfig,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            () = stop.cancelled() => return Ok(()),
            _ = tick.tick() => {}
        }
        for p in &portals {
            if cfg.contacts_per_sec > 0 {
                hs.import_contacts(*p, cfg.contacts_per_sec)?;
            }
            if cfg.deals_per_sec > 0 {
                hs.deal_stage_stream(*p, cfg.deals_per_sec, &STAGES)?;
            }
        }
    }
}

fn child_env(amqp: &str, db: &str, sandbox: &Sandbox, port: u16) -> Vec<(String, String)> {
    [
        ("CONNECTOR_AMQP_URL", amqp.to_owned()),
        ("CONNECTOR_QUEUE_PREFIX", "fault.".to_owned()),
        ("CONNECTOR_DATABASE_URL", db.to_owned()),
        ("CONNECTOR_ENCRYPTION_KEY", KEY.to_owned()),
        ("CONNECTOR_HUBSPOT_API_URL", sandbox.hubspot_url()),
        ("CONNECTOR_IMPACT_API_URL", sandbox.impact_url()),
        ("CONNECTOR_HUBSPOT_CLIENT_SECRET", TEST_SECRET.to_owned()),
        ("CONNECTOR_INGEST_ADDR", format!("127.0.0.1:{port}")),
        // Outlasts the run's outages (minutes) and still ends the run soon.
        (
            "CONNECTOR_RETRY_SCHEDULE",
            "1s,2s,4s,8s,15s,30s,30s,30s,30s,30s".to_owned(),
        ),
        ("CONNECTOR_SHUTDOWN_GRACE_SECS", "20".to_owned()),
        ("CONNECTOR_LOG", "info,lapin=warn,sqlx=warn".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

async fn wait_ready(port: u16) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    for _ in 0..600 {
        if client
            .get(format!("http://127.0.0.1:{port}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("ingest did not become ready on port {port}")
}

/// Contacts fire on creation (`OrderId` = the contact id); deals on a
/// `dealstage` change (`OrderId` = `{deal}_{stage}`).
fn portal_doc(portal: u64) -> Value {
    let mut contacts = seed_contact_mappings();
    contacts[2] = json!({ "from": "hs_object_id", "to": "OrderId" });
    let mut deals = seed_deal_mappings();
    // Line items carry the currency the deal amount needs.
    deals.extend(seed_line_item_mappings());
    json!({
        "portal_id": portal,
        "hubspot": { "private_app_token": format!("pat-sandbox-{portal}") },
        "impact": { "account_sid": format!("IRfault{portal}"), "auth_token": format!("token-{portal}"), "program_id": "1000" },
        "triggers": { "contacts": { "on_create": true }, "deals": { "on_change": ["dealstage"] } },
        "mappings": { "contacts": contacts, "deals": deals },
    })
}

use super::report;
