//! The hostile catalogue, secrets too weak to sign with: an empty or short
//! `CONNECTOR_HUBSPOT_CLIENT_SECRET` stops every process at start (one
//! line naming the variable, never the value), `--check-config` included;
//! an empty or short per-portal webhook secret is refused wherever it
//! enters (the secrets file, the API, a portal document) and nothing is
//! stored. Unset is not empty: with per-portal secrets only, ingest runs
//! without a default secret.

use std::process::{Command, Output};

use crate::support::{
    e2e::seed_contact_mappings,
    website::{Auth, OPERATOR_TOKEN, WebEnv},
};
use axum::http::Method;
use serde_json::{Value, json};

/// `name ARGS` with only `env` (and a quiet log) as its environment.
fn run(name: &str, args: &[&str], env: &[(&str, &str)]) -> anyhow::Result<Output> {
    static BINS: std::sync::OnceLock<tools::binaries::Binaries> = std::sync::OnceLock::new();
    let bins = match BINS.get() {
        Some(b) => b,
        None => {
            let b = tools::binaries::Binaries::ensure(&["ingest", "console", "worker"])?;
            BINS.get_or_init(|| b)
        }
    };
    Ok(Command::new(bins.path(name))
        .args(args)
        .env_clear()
        .env("CONNECTOR_LOG", "warn")
        // Nowhere to connect to: nothing must get that far.
        .env("CONNECTOR_AMQP_URL", "amqp://guest:guest@127.0.0.1:1/%2f")
        .env(
            "CONNECTOR_DATABASE_URL",
            "postgres://postgres@127.0.0.1:1/none",
        )
        .env("CONNECTOR_INGEST_ADDR", "127.0.0.1:0")
        .env("CONNECTOR_CONSOLE_ADDR", "127.0.0.1:0")
        .envs(env.iter().copied())
        .output()?)
}

/// Asserts `out` is a refusal at start: exit code 2, one line on stderr
/// naming `setting` and saying `problem`, without `value`.
fn refused(out: &Output, setting: &str, problem: &str, value: &str) -> Result<(), String> {
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err.lines().collect();
    let ok = out.status.code() == Some(2)
        && lines.len() == 1
        && lines[0].contains(setting)
        && lines[0].contains(problem)
        && (value.trim().is_empty() || !lines[0].contains(value));
    if ok {
        Ok(())
    } else {
        Err(format!("{:?}: {err}", out.status.code()))
    }
}

#[test]
fn an_empty_or_short_client_secret_stops_every_process_at_start() -> anyhow::Result<()> {
    let secrets_file = std::env::temp_dir().join(format!("weak-{}", uuid::Uuid::new_v4()));
    std::fs::write(&secrets_file, "1001=a-private-apps-secret-0123\n")?;
    let file = secrets_file.display().to_string();
    let no_db = ("CONNECTOR_WEBHOOK_SECRETS_DB", "false");
    let mut failures = Vec::new();
    for (value, problem) in [
        ("", "is empty"),
        ("   ", "is empty"),
        ("short-secret", "shorter than 16"),
    ] {
        let secret = ("CONNECTOR_HUBSPOT_CLIENT_SECRET", value);
        for (name, args) in [
            ("ingest", &["--check-config"][..]),
            ("ingest", &[][..]),
            ("console", &["--check-config"][..]),
            ("console", &[][..]),
            ("worker", &["run"][..]),
            ("worker", &["migrate"][..]),
        ] {
            let out = run(
                name,
                args,
                &[secret, no_db, ("CONNECTOR_WEBHOOK_SECRETS_FILE", &file)],
            )?;
            if let Err(e) = refused(&out, "CONNECTOR_HUBSPOT_CLIENT_SECRET", problem, value) {
                failures.push(format!("{name} {args:?} with {value:?}: {e}"));
            }
        }
    }
    // Unset is no default secret: ingest runs on per-portal secrets alone.
    let out = run(
        "ingest",
        &["--check-config"],
        &[no_db, ("CONNECTOR_WEBHOOK_SECRETS_FILE", &file)],
    )?;
    if !out.status.success() {
        failures.push(format!("unset, with a secrets file: {out:?}"));
    }
    // A short secret in the secrets file: refused at start, by line.
    std::fs::write(
        &secrets_file,
        "1001=a-private-apps-secret-0123\n1002=tiny\n",
    )?;
    for args in [&["--check-config"][..], &[][..]] {
        let out = run(
            "ingest",
            args,
            &[no_db, ("CONNECTOR_WEBHOOK_SECRETS_FILE", &file)],
        )?;
        if let Err(e) = refused(
            &out,
            "CONNECTOR_WEBHOOK_SECRETS_FILE",
            "line 2: the secret of portal 1002 is shorter",
            "tiny",
        ) {
            failures.push(format!(
                "ingest {args:?} with a short secret in the file: {e}"
            ));
        }
    }
    std::fs::remove_file(&secrets_file)?;
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    Ok(())
}

/// A private-app portal's document, with `webhook_secret` when given.
fn private_app(portal: u64, webhook_secret: Option<&str>) -> Value {
    let mut hubspot = json!({ "private_app_token": format!("pat-sandbox-{portal}") });
    if let Some(s) = webhook_secret {
        hubspot["webhook_secret"] = json!(s);
    }
    json!({
        "portal_id": portal,
        "hubspot": hubspot,
        "impact": { "account_sid": "IRsandbox", "auth_token": "sandbox-token", "program_id": "1000" },
        "triggers": { "contacts": { "on_create": true } },
        "mappings": { "contacts": seed_contact_mappings() }
    })
}

#[tokio::test]
async fn a_short_webhook_secret_is_refused_by_the_api_and_in_documents() -> anyhow::Result<()> {
    let w = WebEnv::start().await?;
    w.env.apply(private_app(1003, None)).await?;
    let stored = || async {
        sqlx::query_scalar::<_, bool>(
            "SELECT hubspot_webhook_secret IS NOT NULL FROM portals WHERE portal_id = 1003",
        )
        .fetch_one(&w.env.pool)
        .await
    };
    let path = "/api/v1/portals/1003/webhook-secret";
    for weak in ["", "  ", "short-secret", "  fifteen-chars  "] {
        let a = w
            .api(
                Method::PUT,
                path,
                Auth::Operator(OPERATOR_TOKEN),
                Some(json!({ "webhook_secret": weak })),
            )
            .await;
        let j = a.json();
        assert_eq!(a.status, 422, "{weak:?}: {}", a.body);
        assert!(
            j["message"]
                .as_str()
                .is_some_and(|m| m.contains("webhook_secret")),
            "{j}"
        );
        assert!(!stored().await?, "{weak:?}: nothing stored");
    }
    let e = w
        .env
        .apply(private_app(1003, Some("short-secret")))
        .await
        .expect_err("a short secret in a document");
    assert!(format!("{e:#}").contains("hubspot.webhook_secret"), "{e:#}");
    assert!(!stored().await?, "nothing stored from the document");
    // The control: a real secret is taken.
    let a = w
        .api(
            Method::PUT,
            path,
            Auth::Operator(OPERATOR_TOKEN),
            Some(json!({ "webhook_secret": "3b1c0f2e-8d4a-4c7e-9f1a-2b6d5e8c7a90" })),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(stored().await?);
    w.finish().await;
    Ok(())
}
