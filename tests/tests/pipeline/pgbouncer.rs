//! The main pool through PgBouncer in transaction mode, `LISTEN` and the
//! migrations straight to PostgreSQL (`CONNECTOR_DATABASE_DIRECT_URL`,
//! issue 22): webhooks become delivered conversions, and a configuration
//! change reaches the running worker.
//!
//! Runs only when `CONNECTOR_TEST_PGBOUNCER_URL` names such a PgBouncer
//! (`postgres://user@host:port`, no database) in front of the tests'
//! PostgreSQL, with `pool_mode = transaction` and `max_prepared_statements`
//! above 0 (PgBouncer 1.21 or later); otherwise it says so and passes.

use std::time::Duration;

use crate::support::{
    e2e::{KEY, PORTAL, WorkerEnv, eventually, fresh_database, new_lead, portal_doc},
    harness,
};
use sandbox::WebhookTarget;
use serde_json::json;
use sqlx::{Connection as _, PgConnection};
use tokio_util::sync::CancellationToken;

/// The variable naming the PgBouncer.
const PGBOUNCER_ENV: &str = "CONNECTOR_TEST_PGBOUNCER_URL";

/// The webhook signing secret of the test.
const CLIENT_SECRET: &str = "sandbox-client-secret";

/// The PgBouncer to test through, or `None` (with a notice) when unset.
fn pgbouncer() -> Option<String> {
    let url = std::env::var(PGBOUNCER_ENV)
        .ok()
        .filter(|u| !u.trim().is_empty());
    if url.is_none() {
        eprintln!(
            "skipped: set {PGBOUNCER_ENV}=postgres://user@host:port to a PgBouncer (1.21 or \
             later) in transaction mode with max_prepared_statements > 0 in front of the tests' \
             PostgreSQL"
        );
    }
    url
}

/// The database of `direct` (a URL straight to PostgreSQL) through `bouncer`.
fn through(bouncer: &str, direct: &str) -> anyhow::Result<String> {
    let database = url::Url::parse(direct)?.path().to_owned();
    let mut url = url::Url::parse(bouncer)?;
    url.set_path(&database);
    Ok(url.to_string())
}

/// Fails unless `url` is a transaction-mode pooler: a second client gets
/// the server session the first one's finished statement left (in session
/// mode a server stays with its client until the client disconnects).
async fn assert_transaction_mode(url: &str) -> anyhow::Result<()> {
    let mut first = PgConnection::connect(url).await?;
    let mut second = PgConnection::connect(url).await?;
    for _ in 0..20 {
        let a: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(&mut first)
            .await?;
        let b: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(&mut second)
            .await?;
        if a == b {
            return Ok(());
        }
    }
    anyhow::bail!(
        "{PGBOUNCER_ENV}: two clients never shared a server session: not transaction mode"
    )
}

fn contacts_doc() -> serde_json::Value {
    json!({
        "triggers": { "contacts": { "on_create": true } },
        "mappings": { "contacts": crate::support::e2e::seed_contact_mappings() }
    })
}

#[tokio::test]
async fn ingest_and_worker_run_through_pgbouncer_listening_and_migrating_directly()
-> anyhow::Result<()> {
    let Some(bouncer) = pgbouncer() else {
        return Ok(());
    };
    // The migrations of a fresh database, the main pool through PgBouncer.
    let fresh = fresh_database().await?;
    let mut migrating = harness::test_settings();
    migrating.database_url = through(&bouncer, &fresh)?;
    migrating.database_direct_url = Some(fresh.clone());
    assert_transaction_mode(&migrating.database_url).await?;
    let bounced = shared::db::connect(&migrating.database_url, 2).await?;
    shared::db::direct::migrate(&migrating, &bounced).await?;
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success")
        .fetch_one(&bounced)
        .await?;
    assert_eq!(applied, shared::db::MIGRATOR.iter().count() as i64);
    bounced.close().await;
    crate::support::e2e::drop_database(&fresh).await;

    let env = WorkerEnv::start().await?;
    let mut paused = contacts_doc();
    paused["status"] = json!("paused");
    env.apply(paused).await?;
    let mut settings = env.settings.clone();
    settings.database_direct_url = Some(env.settings.database_url.clone());
    settings.database_url = through(&bouncer, &env.settings.database_url)?;
    settings.hubspot_client_secret = Some(CLIENT_SECRET.to_owned().into());
    // Ingest follows the webhook secrets: it listens too.
    settings.webhook_secrets_db = true;

    let ingest = harness::spawn_ingest(settings.clone()).await?;
    env.sandbox
        .hubspot()
        .set_webhook_target(Some(WebhookTarget::new(
            ingest.webhook_url(),
            CLIENT_SECRET,
        )));
    // The whole worker process: migrations, the budget check, the LISTEN.
    let shutdown = CancellationToken::new();
    let worker = tokio::spawn(worker::run(settings.clone(), shutdown.clone()));

    eventually(
        Duration::from_secs(20),
        "ingest and the worker listening",
        || async {
            let listening: Vec<String> = sqlx::query_scalar(
                "SELECT application_name FROM pg_stat_activity \
             WHERE datname = current_database() AND query LIKE 'LISTEN%' ORDER BY 1",
            )
            .fetch_all(&env.pool)
            .await?;
            Ok(listening.len() == 2
                && listening[0] == shared::db::budget::INGEST_APP
                && listening[1].starts_with(shared::db::budget::WORKER_APP))
        },
    )
    .await?;

    let hs = env.sandbox.hubspot();
    hs.create_contact(PORTAL, new_lead("while-paused"))?;
    eventually(Duration::from_secs(20), "a skipped event", || async {
        Ok(env.events().await?.len() == 1)
    })
    .await?;
    assert!(env.submissions().is_empty(), "paused: nothing sent");

    // Resumed through PgBouncer: its NOTIFY reaches the worker's direct
    // LISTEN (the worker's cache would keep the paused portal a minute).
    let apply_pool = shared::db::connect(&settings.database_url, 1).await?;
    let cipher = shared::crypto::SecretCipher::from_base64(KEY)?;
    let doc = portal_doc(
        contacts_doc()["triggers"].clone(),
        contacts_doc()["mappings"].clone(),
    );
    worker::cli::apply_text(&apply_pool, &cipher, &doc.to_string(), "test").await?;
    apply_pool.close().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    for i in 0..5 {
        hs.create_contact(PORTAL, new_lead(&format!("resumed-{i}")))?;
    }
    env.sandbox
        .impact()
        .wait_for_submissions(5, Duration::from_secs(20))
        .await?;
    eventually(
        Duration::from_secs(20),
        "5 delivered conversions",
        || async {
            let rows = env.conversions().await?;
            Ok(rows.len() == 5 && rows.iter().all(|r| r.2 == "delivered"))
        },
    )
    .await?;
    let mut clicks = env.submitted("ClickId");
    clicks.dedup();
    assert_eq!(
        clicks,
        (0..5).map(|i| format!("resumed-{i}")).collect::<Vec<_>>()
    );

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(15), worker).await???;
    ingest.stop().await?;
    env.finish().await;
    Ok(())
}
