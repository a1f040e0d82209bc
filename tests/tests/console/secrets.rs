//! Secrets: encrypted at rest, never logged, and a wrong or missing
//! encryption key is a clear start-up error.
//!
//! The full flow runs ingest, the console and a worker as child processes
//! (the `ingest`, `console` and `worker` executables, built first: see
//! `tools::binaries`) with
//! `CONNECTOR_LOG=debug`, installs a portal through OAuth, saves an
//! impact.com auth token through the website API, sets a private-app
//! portal's webhook secret through the API, sends signed webhooks (each app
//! with its own secret) and delivers conversions; then searches every
//! captured log line and every column of every table for each secret.

use std::{
    path::PathBuf,
    process::Stdio,
    time::{Duration, Instant},
};

use crate::support::e2e::{self, seed_contact_mappings};
use base64::Engine as _;
use domain::events::PortalId;
use sandbox::{ImpactAccount, PortalSeed, Sandbox, SandboxConfig, WebhookTarget};
use secrecy::ExposeSecret;
use serde_json::json;
use shared::{crypto::SecretCipher, db::portals::secret_context};
use sqlx::{PgPool, Row};
use tokio::process::{Child, Command};

const PORTAL: u64 = 1001;
/// A private-app portal with a webhook secret of its own.
const PRIVATE: u64 = 1002;

/// `ingest`, `console` or `worker`, beside this test's executable (built
/// first when run through cargo).
fn exe(name: &str) -> anyhow::Result<PathBuf> {
    Ok(tools::binaries::Binaries::ensure(&["worker", "ingest", "console"])?.path(name))
}

fn random_key() -> String {
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Starts `name` (`ingest`, `console`, or `worker` with `run`).
fn spawn(name: &str, env: &[(String, String)], log: &PathBuf) -> anyhow::Result<Child> {
    let file = std::fs::File::create(log)?;
    let args: &[&str] = if name == "worker" { &["run"] } else { &[] };
    Ok(Command::new(exe(name)?)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(file.try_clone()?)
        .stderr(file)
        .kill_on_drop(true)
        .spawn()?)
}

/// SIGTERM (a graceful stop), then waits.
async fn stop(mut child: Child) -> anyhow::Result<()> {
    if let Some(pid) = child.id() {
        tools::process::signal(pid, rustix::process::Signal::TERM);
    }
    tokio::time::timeout(Duration::from_secs(30), child.wait()).await??;
    Ok(())
}

/// Every table, every column, as text (bytea as hex).
async fn dump(pool: &PgPool) -> anyhow::Result<String> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' ORDER BY 1",
    )
    .fetch_all(pool)
    .await?;
    let mut out = String::new();
    for t in tables {
        let rows: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT string_agg(x::text, '\n') FROM {t} x"
        )))
        .fetch_one(pool)
        .await?;
        out.push_str(&rows.unwrap_or_default());
        out.push('\n');
    }
    Ok(out)
}

#[tokio::test]
async fn secrets_are_encrypted_at_rest_and_never_logged() -> anyhow::Result<()> {
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let client_secret = format!("client-secret-{tag}");
    let impact_token = format!("impact-token-{tag}");
    let admin_token = format!("admin-token-{tag}");
    let key = random_key();
    let webhook_secret = format!("private-app-webhook-secret-{tag}");
    let sandbox = Sandbox::start(SandboxConfig {
        portals: vec![PortalSeed::sized(PORTAL, 3), PortalSeed::sized(PRIVATE, 1)],
        impact_accounts: vec![ImpactAccount {
            account_sid: "IRsecret".into(),
            auth_token: impact_token.clone(),
            program_ids: vec!["1000".into()],
        }],
        oauth_client_secret: client_secret.clone(),
        ..SandboxConfig::default()
    })
    .await?;
    let db = e2e::fresh_database().await?;
    let pool = shared::db::connect(&db, 2).await?;
    shared::db::migrate(&pool).await?;
    let free_port = tools::process::free_port;
    let (port, console_port, admin_port) = (free_port()?, free_port()?, free_port()?);
    let base = format!("http://127.0.0.1:{port}");
    let site = format!("http://127.0.0.1:{console_port}");
    let prefix = harness_prefix();
    let env: Vec<(String, String)> = [
        ("CONNECTOR_AMQP_URL", crate::support::harness::amqp_url()),
        ("CONNECTOR_QUEUE_PREFIX", prefix.clone()),
        ("CONNECTOR_DATABASE_URL", db.clone()),
        ("CONNECTOR_ENCRYPTION_KEY", key.clone()),
        ("CONNECTOR_HUBSPOT_CLIENT_ID", "sandbox-client-id".into()),
        ("CONNECTOR_HUBSPOT_CLIENT_SECRET", client_secret.clone()),
        ("CONNECTOR_HUBSPOT_API_URL", sandbox.hubspot_url()),
        (
            "CONNECTOR_HUBSPOT_AUTHORIZE_URL",
            format!("{}/oauth/authorize", sandbox.hubspot_url()),
        ),
        ("CONNECTOR_IMPACT_API_URL", sandbox.impact_url()),
        ("CONNECTOR_ADMIN_TOKEN", admin_token.clone()),
        ("CONNECTOR_PUBLIC_URL", base.clone()),
        ("CONNECTOR_INGEST_ADDR", format!("127.0.0.1:{port}")),
        (
            "CONNECTOR_CONSOLE_ADDR",
            format!("127.0.0.1:{console_port}"),
        ),
        ("CONNECTOR_ADMIN_ADDR", format!("127.0.0.1:{admin_port}")),
        ("CONNECTOR_CONSOLE_PUBLIC_URL", site.clone()),
        ("CONNECTOR_LOG", "debug".into()),
        ("CONNECTOR_RETRY_SCHEDULE", "1s,1s,1s".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let dir = std::env::temp_dir().join(format!("secrets-test-{tag}"));
    std::fs::create_dir_all(&dir)?;
    let (ingest_log, worker_log) = (dir.join("ingest.log"), dir.join("worker.log"));
    let console_log = dir.join("console.log");
    let ingest = spawn("ingest", &env, &ingest_log)?;
    let console = spawn("console", &env, &console_log)?;
    let worker = spawn("worker", &env, &worker_log)?;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    e2e::eventually(Duration::from_secs(30), "ingest ready", || async {
        Ok(http
            .get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success()))
    })
    .await?;
    e2e::eventually(Duration::from_secs(30), "console ready", || async {
        Ok(http
            .get(format!("{site}/login"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success()))
    })
    .await?;

    // OAuth install: start → the sandbox's authorize page → callback. The
    // access token is short-lived, so the worker refreshes it.
    sandbox
        .hubspot()
        .set_access_token_ttl(Duration::from_secs(60));
    let start = http.get(format!("{site}/oauth/start")).send().await?;
    let location = start.headers()["location"].to_str()?.to_owned();
    let state_cookie = cookie(&start, "connector_oauth_state");
    let q: std::collections::HashMap<String, String> = url::Url::parse(&location)?
        .query_pairs()
        .into_owned()
        .collect();
    let code = sandbox
        .hubspot()
        .authorize(PORTAL, &q["redirect_uri"], &q["state"])?;
    let cb = http
        .get(format!(
            "{site}/oauth/callback?code={code}&state={}",
            q["state"]
        ))
        .header("cookie", state_cookie)
        .send()
        .await?;
    assert!(cb.status().is_redirection(), "callback: {}", cb.status());
    let session = cookie(&cb, "connector_session");
    let info: serde_json::Value = http
        .get(format!("{site}/api/v1/session"))
        .header("cookie", &session)
        .send()
        .await?
        .json()
        .await?;
    let csrf = info["csrf_token"].as_str().unwrap_or_default().to_owned();
    let put = |path: &str, body: serde_json::Value| {
        http.put(format!("{site}/api/v1/portals/{PORTAL}/{path}"))
            .header("cookie", &session)
            .header("x-csrf-token", &csrf)
            .json(&body)
            .send()
    };
    let r = put(
        "settings",
        json!({"account_sid": "IRsecret", "auth_token": impact_token, "program_id": "1000"}),
    )
    .await?;
    assert!(r.status().is_success(), "settings: {}", r.text().await?);
    let r = put("triggers", json!({"contacts": {"on_create": true}})).await?;
    assert!(r.status().is_success(), "triggers: {}", r.text().await?);
    let r = put("mappings", json!({"contacts": seed_contact_mappings()})).await?;
    assert!(r.status().is_success(), "mappings: {}", r.text().await?);

    // A private-app portal, configured as code, and its webhook secret set
    // through the API: shown as set, never again as a value.
    let doc = json!({
        "portal_id": PRIVATE,
        "hubspot": { "private_app_token": format!("pat-sandbox-{PRIVATE}") },
        "impact": { "account_sid": "IRsecret", "auth_token": impact_token, "program_id": "1000" },
        "triggers": { "contacts": { "on_create": true } },
        "mappings": { "contacts": seed_contact_mappings() }
    });
    let cipher = SecretCipher::from_base64(&key)?;
    worker::cli::apply_text(&pool, &cipher, &doc.to_string(), "test").await?;
    let r = http
        .put(format!("{site}/api/v1/portals/{PRIVATE}/webhook-secret"))
        .bearer_auth(&admin_token)
        .json(&json!({ "webhook_secret": webhook_secret }))
        .send()
        .await?;
    assert!(
        r.status().is_success(),
        "webhook secret: {}",
        r.text().await?
    );
    let view = http
        .get(format!("{site}/api/v1/portals/{PRIVATE}"))
        .bearer_auth(&admin_token)
        .send()
        .await?
        .text()
        .await?;
    assert!(view.contains(r#""webhook_secret_set":true"#), "{view}");
    assert!(!view.contains(&webhook_secret), "{view}");

    // Signed webhooks through ingest (the private app's with its own
    // secret), conversions through the worker (with the OAuth access token
    // refreshed on the way: it was issued short-lived).
    sandbox.hubspot().set_webhook_target(Some(
        WebhookTarget::new(format!("{base}{}", ingest::WEBHOOK_PATH), &client_secret)
            .with_portal_secret(PRIVATE, &webhook_secret),
    ));
    sandbox.hubspot().create_contact(
        PORTAL,
        [
            ("lifecyclestage", "lead"),
            ("hs_lead_status", "NEW"),
            ("custom_impact_click_id", "click"),
        ],
    )?;
    sandbox.hubspot().create_contact(
        PRIVATE,
        [
            ("lifecyclestage", "lead"),
            ("hs_lead_status", "NEW"),
            ("custom_impact_click_id", "private-click"),
        ],
    )?;
    sandbox
        .impact()
        .wait_for_submissions(2, Duration::from_secs(60))
        .await?;
    assert_eq!(
        sandbox.hubspot().webhook_stats().failed_attempts,
        0,
        "both apps' webhooks accepted"
    );
    let admin = http
        .get(format!(
            "http://127.0.0.1:{admin_port}/admin/api/dead-letters"
        ))
        .bearer_auth(&admin_token)
        .send()
        .await?;
    assert!(admin.status().is_success());
    stop(worker).await?;
    stop(console).await?;
    stop(ingest).await?;

    // The secrets, the OAuth tokens included (opened with the key).
    let row = sqlx::query("SELECT hubspot_access_token, hubspot_refresh_token, impact_auth_token FROM portals WHERE portal_id = $1")
        .bind(PORTAL as i64)
        .fetch_one(&pool)
        .await?;
    let mut secrets = vec![
        client_secret.clone(),
        impact_token.clone(),
        admin_token,
        key.clone(),
    ];
    let sealed: Vec<u8> =
        sqlx::query_scalar("SELECT hubspot_webhook_secret FROM portals WHERE portal_id = $1")
            .bind(PRIVATE as i64)
            .fetch_one(&pool)
            .await?;
    let opened = cipher.decrypt(
        &sealed,
        &secret_context(PortalId(PRIVATE), "hubspot_webhook_secret"),
    )?;
    assert_eq!(opened.expose_secret(), webhook_secret, "stored sealed");
    for column in [
        "hubspot_access_token",
        "hubspot_refresh_token",
        "impact_auth_token",
    ] {
        let sealed: Vec<u8> = row.try_get(column)?;
        let plain = cipher.decrypt(&sealed, &secret_context(PortalId(PORTAL), column))?;
        secrets.push(plain.expose_secret().to_owned());
    }
    assert_eq!(
        secrets[6], impact_token,
        "the stored token is the one saved"
    );
    secrets.push(webhook_secret.clone());
    // Basic auth carries base64("SID:token"): that must not leak either.
    secrets
        .push(base64::engine::general_purpose::STANDARD.encode(format!("IRsecret:{impact_token}")));

    let logs = format!(
        "{}\n{}\n{}",
        std::fs::read_to_string(&ingest_log)?,
        std::fs::read_to_string(&console_log)?,
        std::fs::read_to_string(&worker_log)?
    );
    assert!(logs.lines().count() > 20, "logs were captured:\n{logs}");
    assert!(logs.contains("DEBUG"), "at debug level");
    let stored = dump(&pool).await?;
    assert!(
        stored.contains("IRsecret"),
        "the dump sees the portal's settings"
    );
    for s in &secrets {
        assert!(
            !logs.contains(s.as_str()),
            "a secret appears in the logs: {s}"
        );
        assert!(
            !stored.contains(s.as_str()),
            "a secret is stored in clear: {s}"
        );
        let hex = hex::encode(s.as_bytes());
        assert!(
            !stored.contains(&hex),
            "a secret is stored in clear (bytea): {s}"
        );
    }
    pool.close().await;
    e2e::drop_database(&db).await;
    if let Ok((_c, ch)) = crate::support::harness::broker_channel().await {
        let mut s = shared::config::Settings::defaults();
        s.queue_prefix = prefix;
        let _ = crate::support::harness::delete_topology(&ch, &s).await;
    }
    sandbox.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

fn harness_prefix() -> String {
    crate::support::harness::unique_prefix()
}

fn cookie(resp: &reqwest::Response, name: &str) -> String {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with(&format!("{name}=")))
        .map(|c| c.split(';').next().unwrap_or_default().to_owned())
        .unwrap_or_default()
}

/// Runs `worker run` with `env` until it exits (or 30 s).
async fn worker_exit(env: &[(&str, String)]) -> anyhow::Result<(Option<i32>, String)> {
    let mut cmd = Command::new(exe("worker")?);
    cmd.arg("run").env_clear();
    cmd.env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let started = Instant::now();
    let out = tokio::time::timeout(
        Duration::from_secs(30),
        cmd.stdin(Stdio::null()).kill_on_drop(true).output(),
    )
    .await??;
    assert!(started.elapsed() < Duration::from_secs(30));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((out.status.code(), text))
}

#[tokio::test]
async fn a_missing_wrong_or_replaced_key_is_a_clear_start_up_error() -> anyhow::Result<()> {
    let db = e2e::fresh_database().await?;
    let base = vec![
        ("CONNECTOR_DATABASE_URL", db.clone()),
        ("CONNECTOR_AMQP_URL", crate::support::harness::amqp_url()),
        ("CONNECTOR_QUEUE_PREFIX", harness_prefix()),
        ("CONNECTOR_LOG", "warn".to_owned()),
    ];
    let with = |k: Option<&str>| {
        let mut e = base.clone();
        if let Some(k) = k {
            e.push(("CONNECTOR_ENCRYPTION_KEY", k.to_owned()));
        }
        e
    };
    let cases = [
        (None, "CONNECTOR_ENCRYPTION_KEY"),
        (Some("not base64 at all!"), "CONNECTOR_ENCRYPTION_KEY"),
        (Some("c2hvcnQ="), "CONNECTOR_ENCRYPTION_KEY"),
    ];
    for (key, words) in cases {
        let (code, text) = worker_exit(&with(key)).await?;
        assert_ne!(code, Some(0), "{key:?}: {text}");
        assert!(
            code.is_some(),
            "{key:?}: exited by a signal (a crash): {text}"
        );
        assert!(text.contains(words), "{key:?}: {text}");
        assert!(!text.contains("panicked"), "{key:?}: {text}");
        assert!(
            text.trim().lines().count() <= 2,
            "{key:?}: one clear line: {text}"
        );
    }

    // Secrets sealed with one key; the worker started with another.
    let pool = shared::db::connect(&db, 2).await?;
    shared::db::migrate(&pool).await?;
    let sealed_with = random_key();
    let cipher = SecretCipher::from_base64(&sealed_with)?;
    let doc = e2e::portal_doc(
        json!({"contacts": {"on_create": true}}),
        json!({"contacts": seed_contact_mappings()}),
    );
    worker::cli::apply_text(&pool, &cipher, &doc.to_string(), "test").await?;
    let (code, text) = worker_exit(&with(Some(&random_key()))).await?;
    assert_ne!(code, Some(0), "{text}");
    assert!(text.contains("cannot decrypt the stored secrets"), "{text}");
    assert!(!text.contains("panicked"), "{text}");
    assert!(!text.contains(&sealed_with), "the key is not printed");
    pool.close().await;
    e2e::drop_database(&db).await;
    Ok(())
}
