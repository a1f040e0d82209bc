//! The run's surroundings: load generation, the process supervisor, the
//! children's settings, the portal documents and the wait for the end.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use serde_json::{Value, json};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use super::{
    FaultConfig,
    procs::Proc,
    reconcile::{Reconciliation, reconcile},
};
use crate::support::{
    KEY, TEST_SECRET, seed_contact_mappings, seed_deal_mappings, seed_line_item_mappings,
};
use sandbox::{FakeHubSpot, Sandbox};

/// The queue prefix of the children.
pub(super) const QUEUE_PREFIX: &str = "fault.";

/// Stages every deal of the load goes through (one conversion each).
const STAGES: [&str; 3] = ["appointmentscheduled", "qualifiedtobuy", "closedwon"];

/// Waits until nothing is missing, or nothing moved for a while, or `limit`.
pub(super) async fn settle(
    sandbox: &Sandbox,
    account_of: &HashMap<u64, String>,
    limit: Duration,
) -> Reconciliation {
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
pub(super) async fn supervise(
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
pub(super) async fn generate_load(
    hs: FakeHubSpot,
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

/// The retry ladder of the run: short first steps, then minute steps
/// adding up to well over the longest outage (impact.com fails for 40 % of
/// the run), as the production ladder (10 s … 24 h) outlasts real outages.
pub(super) fn retry_schedule(duration: Duration) -> String {
    let minutes = (duration.as_secs_f64() * 0.4 / 60.0).ceil() as usize * 2 + 2;
    let mut steps = vec!["1s", "2s", "4s", "8s", "15s", "30s"];
    steps.extend(std::iter::repeat_n("60s", minutes));
    steps.join(",")
}

pub(super) fn child_env(
    amqp: &str,
    db: &str,
    sandbox: &Sandbox,
    port: u16,
    retry_schedule: String,
) -> Vec<(String, String)> {
    [
        ("CONNECTOR_AMQP_URL", amqp.to_owned()),
        ("CONNECTOR_QUEUE_PREFIX", QUEUE_PREFIX.to_owned()),
        ("CONNECTOR_DATABASE_URL", db.to_owned()),
        ("CONNECTOR_ENCRYPTION_KEY", KEY.to_owned()),
        ("CONNECTOR_HUBSPOT_API_URL", sandbox.hubspot_url()),
        ("CONNECTOR_IMPACT_API_URL", sandbox.impact_url()),
        ("CONNECTOR_HUBSPOT_CLIENT_SECRET", TEST_SECRET.to_owned()),
        ("CONNECTOR_INGEST_ADDR", format!("127.0.0.1:{port}")),
        ("CONNECTOR_RETRY_SCHEDULE", retry_schedule),
        ("CONNECTOR_SHUTDOWN_GRACE_SECS", "20".to_owned()),
        ("CONNECTOR_LOG", "info,lapin=warn,sqlx=warn".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

pub(super) async fn wait_ready(port: u16) -> anyhow::Result<()> {
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
pub(super) fn portal_doc(portal: u64) -> Value {
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
