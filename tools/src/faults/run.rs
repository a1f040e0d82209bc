//! One fault-suite run: set up, load, faults on a seeded schedule, (in a
//! cluster run, if asked) a partition with the load still flowing, settle,
//! reconcile.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use rand::{SeedableRng, rngs::StdRng};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use super::{
    FaultConfig, Report,
    cluster::RabbitCluster,
    env::{
        QUEUE_PREFIX, child_env, generate_load, portal_doc, retry_schedule, settle, supervise,
        wait_ready,
    },
    firewall,
    inject::{Injector, sandbox_handles, schedule},
    partition,
    postgres::PrivatePostgres,
    procs::{Proc, Role},
    report,
};
use crate::{
    binaries::Binaries,
    process::free_port,
    support::{KEY, TEST_SECRET, WEBHOOK_PATH, apply_portal},
};
use sandbox::{DeliveryOptions, ImpactAccount, PortalSeed, Sandbox, SandboxConfig, WebhookTarget};

/// Runs the suite with the `ingest` and `worker` executables of `bins`; the
/// error case is a set-up failure (e.g. no private RabbitMQ), a finished
/// run's verdict is in the [`Report`].
pub async fn run(cfg: FaultConfig, bins: &Binaries) -> anyhow::Result<Report> {
    std::fs::create_dir_all(&cfg.work_dir)?;
    if cfg.partition {
        anyhow::ensure!(cfg.cluster >= 3, "a partition needs a cluster of 3 or more");
        firewall::check_available()
            .await
            .context("the partition phase cuts a node off with nftables")?;
    }
    let dir = cfg.work_dir.clone();
    println!(
        "fault-suite: logs and private services under {}",
        dir.display()
    );
    let pg = PrivatePostgres::start(&dir).await.context(
        "cannot start a private PostgreSQL (initdb/pg_ctl) for the fault suite; \
         the shared one is never restarted",
    )?;
    let rabbit = RabbitCluster::start(&dir, cfg.cluster).await.context(
        "cannot start a private RabbitMQ (rabbitmq-server) for the fault suite; \
         the shared one is never restarted",
    )?;
    let ports: Vec<String> = rabbit.nodes.iter().map(|n| n.port.to_string()).collect();
    println!(
        "fault-suite: private PostgreSQL on port {}, RabbitMQ on port {}",
        pg.port,
        ports.join(", ")
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
        apply_portal(&pool, &cipher, &portal_doc(*p), "fault-suite").await?;
    }

    // Children run from copies: rebuilding the workspace during a run
    // replaces the executables, and restarts must keep working.
    let copy = |name: &str| -> anyhow::Result<std::path::PathBuf> {
        let exe = dir.join(format!("{name}-exe"));
        std::fs::copy(bins.path(name), &exe).with_context(|| format!("copying {name}"))?;
        Ok(exe)
    };
    let (ingest_exe, worker_exe) = (copy("ingest")?, copy("worker")?);
    let ingest_port = free_port()?;
    let ladder = retry_schedule(cfg.duration);
    println!("fault-suite: retry ladder {ladder}");
    let env = child_env(&rabbit.amqp_urls(), &db_url, &sandbox, ingest_port, ladder);
    let ingest = Arc::new(Mutex::new(Proc::spawn(
        Role::Ingest,
        &ingest_exe,
        env.clone(),
        &dir.join("ingest.log"),
    )?));
    let mut workers = Vec::new();
    for i in 0..cfg.workers {
        workers.push(Proc::spawn(
            Role::Worker,
            &worker_exe,
            env.clone(),
            &dir.join(format!("worker-{i}.log")),
        )?);
    }
    let workers = Arc::new(Mutex::new(workers));
    wait_ready(ingest_port).await?;
    let hs = sandbox.hubspot().clone();
    hs.set_webhook_target(Some(WebhookTarget::new(
        format!("http://127.0.0.1:{ingest_port}{WEBHOOK_PATH}"),
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
    let counts = Arc::new(Mutex::new(report::FaultCounts {
        cluster_nodes: rabbit.nodes.len(),
        ..report::FaultCounts::default()
    }));
    let work_queue = shared::broker::Topology {
        prefix: QUEUE_PREFIX.into(),
        retry_delays: Vec::new(),
        delivery_limit: 0,
        quorum_initial_group_size: None,
    }
    .work_queue();
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
            work_queue: work_queue.clone(),
            account_of: account_of.clone(),
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
    if cfg.partition {
        println!("  [{:6.1} s] partition", started.elapsed().as_secs_f64());
        let p = partition::run(
            &rabbit,
            &work_queue,
            (sandbox.hubspot(), sandbox.impact()),
            &account_of,
        )
        .await?;
        println!(
            "  [{:6.1} s] partition done",
            started.elapsed().as_secs_f64()
        );
        counts.lock().await.partition = Some(p);
    }
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
