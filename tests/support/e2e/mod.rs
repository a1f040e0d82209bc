//! Helpers for the worker's end-to-end tests: a sandbox, a fresh database,
//! isolated settings and a worker built on them.

mod running;
pub use running::{Running, eventually, spawn_worker};

use std::sync::Mutex;

use secrecy::SecretString;
use serde_json::{Value, json};
use shared::{
    broker::{Envelope, OutgoingMessage, Publisher},
    config::Settings,
    crypto::SecretCipher,
};
use sqlx::{PgPool, Row};
use worker::{MessageMeta, MessageOutcome, Worker};

use crate::support::harness;
use sandbox::{Sandbox, SandboxConfig, Submission, WebhookEvent};

/// The sandbox's default portal.
pub const PORTAL: u64 = 1001;
/// Its private-app token.
pub const TOKEN: &str = "pat-sandbox-1001";
pub use tools::support::{
    KEY, drop_database, fresh_database, seed_contact_mappings, seed_deal_mappings,
    seed_line_item_mappings,
};

/// The properties of a new lead that came through an impact.com link
/// with click id `click` (what the seed contact mappings convert).
pub fn new_lead(click: &str) -> Vec<(&'static str, String)> {
    vec![
        ("lifecyclestage", "lead".into()),
        ("hs_lead_status", "NEW".into()),
        ("custom_impact_click_id", click.into()),
    ]
}

/// A sandbox, a fresh database and a worker wired to both.
pub struct WorkerEnv {
    /// The fakes.
    pub sandbox: Sandbox,
    /// Isolated settings (fresh queue prefix and database).
    pub settings: Settings,
    /// The worker's shared state (for single-step processing).
    pub worker: Worker,
    /// The database.
    pub pool: PgPool,
    seen: Mutex<usize>,
    /// Dropped on [`WorkerEnv::finish`], or by `Drop` when a test panicked.
    cleanup: Option<String>,
}

impl Drop for WorkerEnv {
    fn drop(&mut self) {
        let Some(url) = self.cleanup.take() else {
            return;
        };
        // A failed test still removes its database (on a thread of its own:
        // we may be inside the test's runtime).
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                rt.block_on(drop_database(&url));
            }
        })
        .join();
    }
}

impl WorkerEnv {
    /// Starts the default sandbox (portal 1001, account `IRsandbox`; every
    /// webhook event delivered, as if the app subscribed to everything:
    /// `SubscriptionMode::All`).
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with(SandboxConfig::default()).await
    }

    /// Starts with a custom sandbox.
    pub async fn start_with(cfg: SandboxConfig) -> anyhow::Result<Self> {
        let sandbox = Sandbox::start(cfg).await?;
        let mut settings = harness::test_settings();
        settings.database_url = fresh_database().await?;
        settings.encryption_key = Some(SecretString::from(KEY));
        settings.hubspot_api_url = sandbox.hubspot_url();
        settings.impact_api_url = sandbox.impact_url();
        settings.hubspot_client_id = Some("sandbox-client-id".into());
        settings.hubspot_client_secret = Some(SecretString::from("sandbox-client-secret"));
        settings.retry_schedule = "1s,1s,1s".into();
        // Tests of the ladder see every failure; in-process retries are
        // tested on their own (worker_dlq).
        settings.retry_inprocess_attempts = 0;
        settings.retry_inprocess_base_ms = 10;
        settings.retry_inprocess_max_wait_ms = 200;
        settings.replay_rate_per_sec = 1000;
        settings.worker_prefetch = 8;
        // No deferral of busy portals unless a test asks for it.
        settings.worker_portal_backlog = 0;
        settings.shutdown_grace_secs = 5;
        let worker = Worker::connect(&settings).await?;
        let pool = worker.pool.clone();
        let cleanup = Some(settings.database_url.clone());
        Ok(Self {
            sandbox,
            settings,
            worker,
            pool,
            seen: Mutex::new(0),
            cleanup,
        })
    }

    /// Applies a portal document (the sandbox's credentials are filled in
    /// when absent).
    pub async fn apply(&self, mut doc: Value) -> anyhow::Result<()> {
        let defaults = portal_doc(json!({}), json!({}));
        for k in ["portal_id", "hubspot", "impact"] {
            if doc.get(k).is_none() {
                doc[k] = defaults[k].clone();
            }
        }
        let cipher = SecretCipher::from_base64(KEY)?;
        worker::cli::apply_text(&self.pool, &cipher, &doc.to_string(), "test").await?;
        // The single-step path does not run the NOTIFY listener.
        self.worker.portals.clear().await;
        Ok(())
    }

    /// Events the sandbox emitted since the last call.
    pub fn new_events(&self) -> Vec<WebhookEvent> {
        let all = self.sandbox.hubspot().emitted_events();
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let fresh = all[(*seen).min(all.len())..].to_vec();
        *seen = all.len();
        fresh
    }

    /// Processes events as one queued message, in-process (one step).
    pub async fn process(&self, events: &[WebhookEvent]) -> MessageOutcome {
        let body = serde_json::to_vec(events).expect("serialisable");
        worker::process_message(&self.worker, &body, MessageMeta::default()).await
    }

    /// Publishes events as one message to the work exchange (as ingest does).
    pub async fn publish(&self, events: &[WebhookEvent]) -> anyhow::Result<()> {
        let topology = worker::topology(&self.settings)?;
        let publisher = Publisher::new(
            &self.settings.amqp_url,
            "test-publisher",
            topology.clone(),
            1,
        );
        let body = serde_json::to_vec(events)?;
        let headers = Envelope {
            received_at_ms: Some(harness::now_ms()),
            ..Envelope::default()
        }
        .headers();
        let exchange = topology.events_exchange();
        let msg = OutgoingMessage {
            exchange: &exchange,
            routing_key: "portal.1001",
            body: &body,
            headers,
            message_id: uuid::Uuid::new_v4().to_string(),
        };
        publisher
            .publish_all(&[msg], std::time::Duration::from_secs(5))
            .await?;
        publisher.close().await;
        Ok(())
    }

    /// Accepted impact.com submissions.
    pub fn submissions(&self) -> Vec<Submission> {
        self.sandbox.impact().submissions()
    }

    /// One parameter of every accepted submission that has it, sorted.
    pub fn submitted(&self, param: &str) -> Vec<String> {
        let mut values: Vec<String> = self
            .submissions()
            .iter()
            .filter_map(|s| s.param(param).map(str::to_owned))
            .collect();
        values.sort();
        values
    }

    /// Conversion rows: (event type, OrderId, status, attempts).
    pub async fn conversions(&self) -> anyhow::Result<Vec<(String, String, String, i32)>> {
        let rows = sqlx::query(
            "SELECT event_type, order_id, status, attempts FROM conversions ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
            .collect())
    }

    /// Open dead letters: (id, reason class, reason, last status).
    pub async fn dead_letters(&self) -> anyhow::Result<Vec<(i64, String, String, Option<i32>)>> {
        let rows = sqlx::query(
            "SELECT id, reason_class, reason, last_status FROM dead_letters WHERE state = 'open' ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
            .collect())
    }

    /// Webhook event rows: (subscription type, status, reason).
    pub async fn events(&self) -> anyhow::Result<Vec<(String, String, Option<String>)>> {
        let rows =
            sqlx::query("SELECT subscription_type, status, reason FROM webhook_events ORDER BY id")
                .fetch_all(&self.pool)
                .await?;
        Ok(rows
            .into_iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect())
    }

    /// Stops the sandbox, drops the database and the queues.
    pub async fn finish(mut self) {
        self.pool.close().await;
        if let Some(url) = self.cleanup.take() {
            drop_database(&url).await;
        }
        if let Ok((_c, ch)) = harness::broker_channel().await {
            let _ = harness::delete_topology(&ch, &self.settings).await;
        }
    }
}

/// A portal document for the sandbox's portal and impact.com account.
pub fn portal_doc(triggers: Value, mappings: Value) -> Value {
    json!({
        "portal_id": PORTAL,
        "hubspot": { "private_app_token": TOKEN },
        "impact": { "account_sid": "IRsandbox", "auth_token": "sandbox-token", "program_id": "1000" },
        "triggers": triggers,
        "mappings": mappings,
    })
}

/// Normalises an ISO timestamp from HubSpot the way the worker sends it.
pub fn iso_seconds(value: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(value)
        .map(|d| {
            d.with_timezone(&chrono::Utc)
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        })
        .unwrap_or_else(|_| value.to_owned())
}
