//! The quick start's command (`./scripts/quickstart`, which builds the
//! binaries and runs this): the whole pipeline on this machine against the
//! sandbox. It starts the sandbox, ingest, the console and a worker as
//! separate processes, applies the demo portal, makes things happen in the
//! fake HubSpot and prints each conversion as the fake impact.com receives
//! it. However it ends (Ctrl-C, SIGTERM, SIGHUP, an error, even SIGKILL), its
//! children end with it (see `tools::quickstart`).

use std::{
    collections::HashSet,
    path::{Path, PathBuf},
    process::ExitCode,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use clap::Parser;
use serde_json::{Value, json};
use tokio::process::Command;
use tools::{
    binaries::Binaries,
    quickstart::{Children, exec_child_if_asked, termination},
};

/// Runs ingest, the console, a worker and the sandbox, and shows conversions arriving.
#[derive(Parser)]
struct Args {
    /// Port of ingest; the fake HubSpot and impact.com take the next two,
    /// the console the one after.
    #[arg(long, default_value_t = 18080)]
    port: u16,
    /// The demo portal document.
    #[arg(long, default_value = "examples/demo-portal.json")]
    portal: PathBuf,
    /// Database created (dropped first) for the demo.
    #[arg(long, default_value = "connector_demo")]
    database: String,
    /// Exit once the demo's conversions arrived instead of running until Ctrl-C.
    #[arg(long)]
    once: bool,
}

const SECRET: &str = "sandbox-client-secret";
const KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
const PORTAL: u64 = 1001;
/// The sandbox's app and developer API key (its defaults).
const APP_ID: &str = "4242424";
const DEVELOPER_KEY: &str = "sandbox-developer-key";

fn main() -> ExitCode {
    if let Some(e) = exec_child_if_asked() {
        eprintln!("quickstart: {e:#}");
        return ExitCode::from(127);
    }
    let args = Args::parse();
    shared::tls::install_crypto_provider();
    // One thread: every child is started from the main thread, which lives
    // as long as the process (children die with the thread that started them).
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("quickstart: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(supervise(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("quickstart: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the demo until it ends or a termination signal arrives, then stops
/// the children and removes the demo's queues.
async fn supervise(args: Args) -> anyhow::Result<()> {
    let bins = Binaries::ensure(&["sandbox", "ingest", "console", "worker"])?;
    let logs = bins.dir().join("quickstart-logs");
    let mut children = Children::new(&logs, &std::env::current_exe()?)?;
    let prefix = format!("demo{}.", std::process::id());
    let outcome = tokio::select! {
        r = demo(&args, &bins, &mut children, &prefix) => r,
        sig = termination() => {
            println!("== {}: stopping", sig?);
            Ok(usize::MAX)
        }
    };
    children.stop_all(Duration::from_secs(15)).await;
    // The demo's queues go with it.
    let mut settings = shared::config::Settings::defaults();
    settings.queue_prefix = prefix;
    let _ = tools::support::drop_topology(&settings).await;
    match outcome? {
        0 => bail!("no conversion arrived; see the logs in {}", logs.display()),
        _ => Ok(()),
    }
}

/// The demo: returns the number of conversions shown.
async fn demo(
    args: &Args,
    bins: &Binaries,
    children: &mut Children,
    prefix: &str,
) -> anyhow::Result<usize> {
    let bin_dir = bins.dir();
    let logs = bin_dir.join("quickstart-logs");
    let (ingest_port, hubspot_port, impact_port) = (args.port, args.port + 1, args.port + 2);
    let hubspot = format!("http://127.0.0.1:{hubspot_port}");
    let impact = format!("http://127.0.0.1:{impact_port}");
    let ingest = format!("http://127.0.0.1:{ingest_port}");
    let console = format!("http://127.0.0.1:{}", args.port + 3);

    let db_url = recreate_database(&args.database).await?;
    let env: Vec<(&str, String)> = vec![
        ("CONNECTOR_DATABASE_URL", db_url),
        ("CONNECTOR_QUEUE_PREFIX", prefix.to_owned()),
        ("CONNECTOR_HUBSPOT_CLIENT_SECRET", SECRET.into()),
        ("CONNECTOR_ENCRYPTION_KEY", KEY.into()),
        ("CONNECTOR_HUBSPOT_API_URL", hubspot.clone()),
        ("CONNECTOR_IMPACT_API_URL", impact.clone()),
        ("CONNECTOR_INGEST_ADDR", format!("127.0.0.1:{ingest_port}")),
        ("CONNECTOR_PUBLIC_URL", ingest.clone()),
        (
            "CONNECTOR_CONSOLE_ADDR",
            format!("127.0.0.1:{}", args.port + 3),
        ),
        ("CONNECTOR_CONSOLE_PUBLIC_URL", console.clone()),
        // The connector website: "log in through HubSpot" goes to the sandbox.
        ("CONNECTOR_HUBSPOT_CLIENT_ID", "sandbox-client-id".into()),
        (
            "CONNECTOR_HUBSPOT_AUTHORIZE_URL",
            format!("{hubspot}/oauth/authorize"),
        ),
        ("CONNECTOR_LOG", "info,lapin=warn".into()),
        // `worker subscriptions --apply`: the sandbox's app.
        ("CONNECTOR_HUBSPOT_APP_ID", APP_ID.into()),
        ("CONNECTOR_HUBSPOT_DEVELOPER_API_KEY", DEVELOPER_KEY.into()),
    ];

    println!("== starting the sandbox (fake HubSpot {hubspot}, fake impact.com {impact})");
    children.spawn(
        "sandbox",
        &bins.path("sandbox"),
        &[
            "--hubspot-addr",
            &format!("127.0.0.1:{hubspot_port}"),
            "--impact-addr",
            &format!("127.0.0.1:{impact_port}"),
            "--app-id",
            APP_ID,
            "--developer-api-key",
            DEVELOPER_KEY,
            "--client-secret",
            SECRET,
            "--portals",
            &PORTAL.to_string(),
        ],
        &env,
    )?;
    wait_http(
        &format!("{impact}/_sandbox/accounts"),
        Duration::from_secs(30),
    )
    .await?;

    println!(
        "== migrating the database and applying {}",
        args.portal.display()
    );
    run_to_end(bin_dir, "worker", &["migrate"], &env).await?;
    run_to_end(
        bin_dir,
        "worker",
        &["portal", "apply", &args.portal.to_string_lossy()],
        &env,
    )
    .await?;
    // As in a deployment: the app subscribes to what the portal needs and
    // points its target URL at ingest (the fake HubSpot, like HubSpot,
    // delivers nothing else).
    println!("== subscribing the HubSpot app: worker subscriptions --apply");
    run_to_end(bin_dir, "worker", &["subscriptions", "--apply"], &env).await?;

    println!(
        "== starting ingest ({ingest}), the console and a worker; logs in {}",
        logs.display()
    );
    children.spawn("ingest", &bins.path("ingest"), &[], &env)?;
    children.spawn("console", &bins.path("console"), &[], &env)?;
    children.spawn("worker", &bins.path("worker"), &["run"], &env)?;
    wait_http(&format!("{ingest}/readyz"), Duration::from_secs(30)).await?;
    wait_http(&format!("{console}/login"), Duration::from_secs(30)).await?;
    println!("== the connector website: {console}/login (log in through the sandbox's HubSpot)");
    tokio::time::sleep(Duration::from_millis(500)).await;

    let client = reqwest::Client::new();
    println!(
        "== in the fake HubSpot: a lead signs up (click id from an impact.com link), becomes an SQL, and three deals are won"
    );
    let contact: Value = client
        .post(format!("{hubspot}/_sandbox/portals/{PORTAL}/objects/contacts"))
        .json(&json!({"properties": {"email": "ada@example.com", "firstname": "Ada", "lifecyclestage": "lead",
            "custom_impact_click_id": "SKhRQaSXwxyOUQ", "city": "London", "country": "GB", "zip": "N1 9GU"}}))
        .send().await?.error_for_status()?.json().await?;
    let contact_id = contact["id"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| contact["id"].to_string());
    tokio::time::sleep(Duration::from_millis(300)).await;
    client
        .patch(format!(
            "{hubspot}/_sandbox/portals/{PORTAL}/objects/contacts/{contact_id}"
        ))
        .json(&json!({"properties": {"lifecyclestage": "salesqualifiedlead"}}))
        .send()
        .await?
        .error_for_status()?;
    client
        .post(format!(
            "{hubspot}/_sandbox/portals/{PORTAL}/scenarios/deal-stage-stream"
        ))
        .json(&json!({"deals": 3, "stages": ["contractsent", "closedwon"]}))
        .send()
        .await?
        .error_for_status()?;

    println!("== conversions received by the fake impact.com:");
    let shown = watch(
        &client,
        &impact,
        Duration::from_secs(if args.once { 60 } else { 20 }),
        8,
    )
    .await?;
    println!(
        "== {shown} conversions delivered. See them at {impact}/ ; the webhook traffic at {hubspot}/_sandbox/webhooks"
    );
    if !args.once {
        println!(
            "== the pipeline keeps running: change records with the sandbox control API (docs/src/sandbox.md), Ctrl-C stops"
        );
        loop {
            if watch(&client, &impact, Duration::from_secs(3600), usize::MAX)
                .await
                .is_err()
            {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
    Ok(shown)
}

/// Prints conversions as they arrive until `expected` were seen or `limit` passed.
async fn watch(
    client: &reqwest::Client,
    impact: &str,
    limit: Duration,
    expected: usize,
) -> anyhow::Result<usize> {
    let started = Instant::now();
    let mut seen = HashSet::new();
    while started.elapsed() < limit && seen.len() < expected {
        let subs: Value = client
            .get(format!("{impact}/_sandbox/submissions"))
            .send()
            .await?
            .json()
            .await?;
        for s in subs
            .as_array()
            .into_iter()
            .flatten()
            .chain(subs["submissions"].as_array().into_iter().flatten())
        {
            let id = s["seq"].to_string();
            if !seen.insert(id) {
                continue;
            }
            let p = &s["params"];
            let get = |k: &str| -> String {
                p.as_array()
                    .and_then(|a| {
                        a.iter()
                            .find(|kv| kv[0] == k)
                            .map(|kv| kv[1].as_str().unwrap_or("").to_owned())
                    })
                    .or_else(|| p[k].as_str().map(str::to_owned))
                    .unwrap_or_default()
            };
            println!(
                "  {:>3}. {:<22} OrderId={:<24} CustomerId={:<8} ClickId={:<16} EventDate={} -> {}",
                seen.len(),
                get("EventTypeCode"),
                get("OrderId"),
                get("CustomerId"),
                get("ClickId"),
                get("EventDate"),
                s["status"].as_str().unwrap_or("QUEUED")
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Ok(seen.len())
}

async fn run_to_end(
    dir: &Path,
    bin: &str,
    args: &[&str],
    env: &[(&str, String)],
) -> anyhow::Result<()> {
    let status = Command::new(dir.join(bin))
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .kill_on_drop(true)
        .status()
        .await?;
    if !status.success() {
        bail!("{bin} {} failed", args.join(" "));
    }
    Ok(())
}

async fn wait_http(url: &str, limit: Duration) -> anyhow::Result<()> {
    let started = Instant::now();
    while started.elapsed() < limit {
        if reqwest::get(url)
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("{url} did not answer within {limit:?}")
}

async fn recreate_database(name: &str) -> anyhow::Result<String> {
    use sqlx::Connection;
    let base = std::env::var("QUICKSTART_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
    let mut conn = sqlx::PgConnection::connect(&format!("{base}/postgres"))
        .await
        .context("connecting to PostgreSQL")?;
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        bail!("--database must be lower-case letters, digits and underscores");
    }
    // Safe: the name was just restricted to [a-z0-9_].
    let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
    sqlx::query(sqlx::AssertSqlSafe(drop))
        .execute(&mut conn)
        .await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await?;
    Ok(format!("{base}/{name}"))
}
