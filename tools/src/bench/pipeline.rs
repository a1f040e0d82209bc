//! Building blocks of the whole-pipeline benchmark (`bench-pipeline`):
//! worker processes, an isolated environment (database, queues, sandbox,
//! ingest), and the measurements (conversions, latency, HubSpot calls, RSS).

use std::{process::Stdio, time::Duration};

use anyhow::Context as _;
use secrecy::SecretString;
use serde_json::{Value, json};
use shared::config::Settings;
use sqlx::{PgPool, Row};

use crate::{
    bench::{
        IngestChild, ServiceReadings, ServiceRss,
        cpu::{CpuProbe, sandbox_runtime},
        peak_rss_kb,
    },
    binaries::Binaries,
    process::stop_gracefully,
    support::{
        self, KEY, apply_portal, drop_topology, seed_contact_mappings, seed_deal_mappings,
        seed_line_item_mappings,
    },
};
use sandbox::{PortalSeed, Sandbox, SandboxConfig, WebhookTarget};

/// A worker running as a child process.
pub struct WorkerChild {
    child: tokio::process::Child,
}

impl WorkerChild {
    /// Starts `worker run`. The benchmark's own `CONNECTOR_WORKER_*`
    /// variables pass through (tuning).
    pub fn spawn(bins: &Binaries, settings: &Settings) -> anyhow::Result<Self> {
        Self::spawn_with(bins, settings, &[])
    }

    /// [`WorkerChild::spawn`] with more environment variables (they win
    /// over those of `settings`).
    pub fn spawn_with(
        bins: &Binaries,
        settings: &Settings,
        env: &[(String, String)],
    ) -> anyhow::Result<Self> {
        let child = tokio::process::Command::new(bins.path("worker"))
            .arg("run")
            .env("CONNECTOR_AMQP_URL", &settings.amqp_url)
            .env("CONNECTOR_QUEUE_PREFIX", &settings.queue_prefix)
            .env("CONNECTOR_DATABASE_URL", &settings.database_url)
            .env("CONNECTOR_ENCRYPTION_KEY", KEY)
            .env("CONNECTOR_HUBSPOT_API_URL", &settings.hubspot_api_url)
            .env("CONNECTOR_IMPACT_API_URL", &settings.impact_api_url)
            .env("CONNECTOR_LOG", &settings.log)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting worker")?;
        Ok(Self { child })
    }

    /// Peak RSS so far, in KiB.
    pub fn peak_rss_kb(&self) -> u64 {
        self.child.id().map_or(0, peak_rss_kb)
    }

    /// Its process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Asks for a graceful stop (SIGTERM) and waits.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.stop_within(Duration::from_secs(30)).await?;
        Ok(())
    }

    /// SIGTERM, then waits up to `grace` (SIGKILL after that): true when
    /// it exited by itself, successfully, in time.
    pub async fn stop_within(mut self, grace: Duration) -> anyhow::Result<bool> {
        stop_gracefully(&mut self.child, grace).await
    }
}

/// The benchmark's portals: 1001 is the busy one, 1002..=1010 the quiet ones.
pub const BUSY: u64 = 1001;
/// The quiet portals.
pub fn quiet_portals() -> Vec<u64> {
    (1002..=1010).collect()
}

/// What a scenario configures for its portals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Triggers {
    /// Contacts fire on creation.
    ContactCreation,
    /// Deals fire on a `dealstage` change (with line items, contact, stage label).
    DealStage,
    /// Both: contacts on creation, deals on a `dealstage` change.
    Both,
}

/// A fresh environment: sandbox, database, queues, ingest and workers.
pub struct PipelineEnv {
    /// The fakes (in this process).
    pub sandbox: Sandbox,
    /// Settings of ingest and workers.
    pub settings: Settings,
    /// The database.
    pub pool: PgPool,
    /// Ingest.
    pub ingest: IngestChild,
    /// Workers.
    pub workers: Vec<WorkerChild>,
    /// RabbitMQ's and PostgreSQL's memory, sampled.
    services: ServiceRss,
}

/// Peak memory of each process of a run, in KiB.
#[derive(Debug, Clone)]
pub struct PeakRss {
    /// Ingest.
    pub ingest_kb: u64,
    /// Each worker.
    pub workers_kb: Vec<u64>,
    /// RabbitMQ and PostgreSQL (sampled): at the start, and
    /// the highest.
    pub services: ServiceReadings,
}

/// Where a run's database lives and what its workers are given.
#[derive(Debug, Clone, Default)]
pub struct EnvOptions {
    /// A PostgreSQL server of its own (`postgres://user@host:port`, with a
    /// `postgres` database); `None`: the shared one.
    pub server_url: Option<String>,
    /// More environment variables of every worker (e.g.
    /// `CONNECTOR_WORKER_DB_CONNECTIONS`).
    pub worker_env: Vec<(String, String)>,
    /// A pooler in transaction mode (PgBouncer, `postgres://user@host:port`
    /// in front of the run's server) the workers' main pool goes through
    /// to the run's database; their `LISTEN` and migrations go to the
    /// database directly (`CONNECTOR_DATABASE_DIRECT_URL`). `None`: the
    /// workers connect directly.
    pub worker_pooler_url: Option<String>,
}

impl PipelineEnv {
    /// Starts everything; `limits`: HubSpot's rate limit and the fake latencies on.
    pub async fn start(
        bins: &Binaries,
        workers: usize,
        limits: bool,
        triggers: Triggers,
    ) -> anyhow::Result<Self> {
        Self::start_with(bins, workers, limits, triggers, &EnvOptions::default()).await
    }

    /// [`PipelineEnv::start`] with `opts`: the busy portal and the quiet ones.
    pub async fn start_with(
        bins: &Binaries,
        workers: usize,
        limits: bool,
        triggers: Triggers,
        opts: &EnvOptions,
    ) -> anyhow::Result<Self> {
        let portals: Vec<u64> = std::iter::once(BUSY).chain(quiet_portals()).collect();
        Self::start_portals(bins, workers, limits, triggers, &portals, opts).await
    }

    /// [`PipelineEnv::start_with`] with `portal_ids` (each with `triggers`).
    pub async fn start_portals(
        bins: &Binaries,
        workers: usize,
        limits: bool,
        triggers: Triggers,
        portal_ids: &[u64],
        opts: &EnvOptions,
    ) -> anyhow::Result<Self> {
        let portals = portal_ids
            .iter()
            .map(|p| PortalSeed::sized(*p, 10))
            .collect();
        let cfg = SandboxConfig {
            portals,
            rate_limit_per_10s: limits.then_some(110),
            hubspot_latency: Duration::from_millis(if limits { 80 } else { 0 }),
            impact_latency: Duration::from_millis(if limits { 50 } else { 0 }),
            ..SandboxConfig::default()
        };
        let sandbox = start_sandbox(cfg).await?;
        let mut settings = support::test_settings();
        settings.log = "warn".into();
        settings.database_url = match &opts.server_url {
            Some(server) => support::fresh_database_on(server, "postgres").await?,
            None => support::fresh_database().await?,
        };
        settings.encryption_key = Some(SecretString::from(KEY));
        settings.hubspot_api_url = sandbox.hubspot_url();
        settings.impact_api_url = sandbox.impact_url();
        let pool = shared::db::connect(&settings.database_url, 4).await?;
        shared::db::migrate(&pool).await?;
        let cipher = shared::crypto::SecretCipher::from_base64(KEY)?;
        for &portal in portal_ids {
            let doc = portal_doc(portal, triggers);
            apply_portal(&pool, &cipher, &doc, "bench")
                .await
                .with_context(|| format!("configuring portal {portal}"))?;
        }
        let ingest = IngestChild::spawn(bins, &settings).await?;
        sandbox
            .hubspot()
            .set_webhook_target(Some(WebhookTarget::new(
                ingest.webhook_url(),
                support::TEST_SECRET,
            )));
        let services = ServiceRss::for_settings(&settings);
        let mut worker_env = opts.worker_env.clone();
        if let Some(pooler) = &opts.worker_pooler_url {
            let database = database_name(&settings.database_url).context("the run's database")?;
            worker_env.extend([
                (
                    "CONNECTOR_DATABASE_URL".to_owned(),
                    format!("{}/{database}", pooler.trim_end_matches('/')),
                ),
                (
                    "CONNECTOR_DATABASE_DIRECT_URL".to_owned(),
                    settings.database_url.clone(),
                ),
            ]);
        }
        let workers = (0..workers)
            .map(|_| WorkerChild::spawn_with(bins, &settings, &worker_env))
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Self {
            sandbox,
            settings,
            pool,
            ingest,
            workers,
            services,
        })
    }

    /// Delivered conversions so far.
    pub async fn delivered(&self) -> anyhow::Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT count(*) FROM conversions WHERE status = 'delivered'")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// Delivered conversions of `portals` so far.
    pub async fn delivered_of(&self, portals: &[u64]) -> anyhow::Result<i64> {
        let ids: Vec<i64> = portals.iter().map(|p| *p as i64).collect();
        Ok(sqlx::query_scalar(
            "SELECT count(*) FROM conversions WHERE status = 'delivered' AND portal_id = ANY($1)",
        )
        .bind(&ids)
        .fetch_one(&self.pool)
        .await?)
    }

    /// Waits until `expected` conversions are delivered (or `timeout`).
    pub async fn wait_delivered(&self, expected: i64, timeout: Duration) -> anyhow::Result<i64> {
        let started = std::time::Instant::now();
        let mut last_report = started;
        loop {
            // The fake impact.com's in-memory count first: while it has
            // accepted fewer, the rows cannot all be delivered, and the
            // database's count (a scan, PostgreSQL CPU counted against the
            // pipeline) is not asked.
            let accepted = self.sandbox.impact().accepted_conversions() as i64;
            let n = if accepted < expected && started.elapsed() <= timeout {
                accepted
            } else {
                self.delivered().await?
            };
            if n >= expected || started.elapsed() > timeout {
                return Ok(n);
            }
            if last_report.elapsed() > Duration::from_secs(10) {
                last_report = std::time::Instant::now();
                eprintln!(
                    "  ... {n}/{expected} delivered after {:.0} s",
                    started.elapsed().as_secs_f64()
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Conversions of `portals`: count, span from the first webhook accepted
    /// to the last delivery (s), latency p50 and p99 (ms) from webhook
    /// accepted (ingest's `x-received-at-ms`) to delivered.
    pub async fn measure(&self, portals: &[u64]) -> anyhow::Result<Measured> {
        let ids: Vec<i64> = portals.iter().map(|p| *p as i64).collect();
        let row = sqlx::query(
            "SELECT count(*),
                    COALESCE(EXTRACT(EPOCH FROM max(c.delivered_at) - min(e.received_at)), 0)::float8,
                    COALESCE(percentile_cont(0.5) WITHIN GROUP (ORDER BY EXTRACT(EPOCH FROM c.delivered_at - e.received_at)), 0)::float8,
                    COALESCE(percentile_cont(0.99) WITHIN GROUP (ORDER BY EXTRACT(EPOCH FROM c.delivered_at - e.received_at)), 0)::float8
             FROM webhook_events e JOIN conversions c ON c.id = e.conversion_id
             WHERE c.status = 'delivered' AND e.portal_id = ANY($1)",
        )
        .bind(&ids)
        .fetch_one(&self.pool)
        .await?;
        Ok(Measured {
            conversions: row.get::<i64, _>(0) as u64,
            span_s: row.get(1),
            p50_ms: row.get::<f64, _>(2) * 1000.0,
            p99_ms: row.get::<f64, _>(3) * 1000.0,
        })
    }

    /// [`PipelineEnv::measure`] of each of `portals` apart, in their order.
    pub async fn measure_each(&self, portals: &[u64]) -> anyhow::Result<Vec<Measured>> {
        let ids: Vec<i64> = portals.iter().map(|p| *p as i64).collect();
        let rows = sqlx::query(
            "SELECT e.portal_id, count(*),
                    COALESCE(EXTRACT(EPOCH FROM max(c.delivered_at) - min(e.received_at)), 0)::float8,
                    COALESCE(percentile_cont(0.5) WITHIN GROUP (ORDER BY EXTRACT(EPOCH FROM c.delivered_at - e.received_at)), 0)::float8,
                    COALESCE(percentile_cont(0.99) WITHIN GROUP (ORDER BY EXTRACT(EPOCH FROM c.delivered_at - e.received_at)), 0)::float8
             FROM webhook_events e JOIN conversions c ON c.id = e.conversion_id
             WHERE c.status = 'delivered' AND e.portal_id = ANY($1)
             GROUP BY e.portal_id",
        )
        .bind(&ids)
        .fetch_all(&self.pool)
        .await?;
        let mut by_portal = std::collections::HashMap::new();
        for row in rows {
            by_portal.insert(
                row.get::<i64, _>(0),
                Measured {
                    conversions: row.get::<i64, _>(1) as u64,
                    span_s: row.get(2),
                    p50_ms: row.get::<f64, _>(3) * 1000.0,
                    p99_ms: row.get::<f64, _>(4) * 1000.0,
                },
            );
        }
        Ok(ids
            .iter()
            .map(|p| by_portal.get(p).copied().unwrap_or_default())
            .collect())
    }

    /// The processes whose CPU a scenario reads (ingest, the workers).
    pub fn cpu_probe(&self) -> CpuProbe {
        CpuProbe {
            workers: self.workers.iter().filter_map(WorkerChild::pid).collect(),
            ingest: self.ingest.pid(),
            database: database_name(&self.settings.database_url),
        }
    }

    /// HubSpot API calls of `portals`.
    pub fn hubspot_calls(&self, portals: &[u64]) -> u64 {
        portals
            .iter()
            .map(|p| self.sandbox.hubspot().api_calls(*p))
            .sum()
    }

    /// 429s HubSpot answered `portals`.
    pub fn rate_limited(&self, portals: &[u64]) -> u64 {
        portals
            .iter()
            .map(|p| self.sandbox.hubspot().rate_limited(*p))
            .sum()
    }

    /// Peak RSS so far: ingest, each worker, RabbitMQ and PostgreSQL (whose
    /// sampling stops here).
    pub fn peak_rss(&mut self) -> PeakRss {
        PeakRss {
            ingest_kb: self.ingest.peak_rss_kb(),
            workers_kb: self.workers.iter().map(WorkerChild::peak_rss_kb).collect(),
            services: self.services.finish(),
        }
    }

    /// Stops the processes, drops the database and the queues.
    pub async fn finish(self) -> anyhow::Result<()> {
        self.sandbox
            .hubspot()
            .set_webhook_target(None::<WebhookTarget>);
        for w in self.workers {
            w.stop().await?;
        }
        self.ingest.stop().await?;
        self.pool.close().await;
        support::drop_database(&self.settings.database_url).await;
        drop_topology(&self.settings).await?;
        self.sandbox.shutdown().await;
        Ok(())
    }
}

/// One measurement.
#[derive(Debug, Clone, Copy, Default)]
pub struct Measured {
    /// Delivered conversions.
    pub conversions: u64,
    /// First webhook accepted → last conversion delivered, in seconds.
    pub span_s: f64,
    /// Latency percentiles, in milliseconds.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
}

impl Measured {
    /// Conversions per second over the span.
    pub fn rate(&self) -> f64 {
        if self.span_s > 0.0 {
            self.conversions as f64 / self.span_s
        } else {
            0.0
        }
    }
}

fn portal_doc(portal: u64, triggers: Triggers) -> Value {
    let mut contacts = seed_contact_mappings();
    // One OrderId per contact (the import's contacts all share a lead status).
    contacts[2] = json!({ "from": "hs_object_id", "to": "OrderId" });
    let mut deals = seed_deal_mappings();
    deals.extend(seed_line_item_mappings());
    let (trig, mappings) = match triggers {
        Triggers::ContactCreation => (
            json!({ "contacts": { "on_create": true } }),
            json!({ "contacts": contacts }),
        ),
        Triggers::DealStage => (
            json!({ "deals": { "on_change": ["dealstage"] } }),
            json!({ "deals": deals }),
        ),
        Triggers::Both => (
            json!({ "contacts": { "on_create": true }, "deals": { "on_change": ["dealstage"] } }),
            json!({ "contacts": contacts, "deals": deals }),
        ),
    };
    json!({
        "portal_id": portal,
        "hubspot": { "private_app_token": format!("pat-sandbox-{portal}") },
        "impact": { "account_sid": "IRsandbox", "auth_token": "sandbox-token", "program_id": "1000" },
        "triggers": trig,
        "mappings": mappings,
    })
}

/// Starts the sandbox on its own runtime (`bench::cpu`), so its CPU is
/// told from the driver's.
pub async fn start_sandbox(cfg: SandboxConfig) -> anyhow::Result<Sandbox> {
    sandbox_runtime().spawn(Sandbox::start(cfg)).await?
}

/// The database a URL names (its last path segment, before any query).
pub fn database_name(url: &str) -> Option<String> {
    let name = url.rsplit('/').next()?.split('?').next()?;
    (!name.is_empty()).then(|| name.to_owned())
}
