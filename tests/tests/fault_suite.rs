//! The reduced fault suite (CI): `tools::faults` with the reduced
//! configuration — 40 s of load on two portals while `worker` processes
//! are SIGKILLed, a private RabbitMQ restarts, a private PostgreSQL
//! crashes, impact.com fails and HubSpot answers 429 and delivers
//! duplicates out of order — must end with nothing lost and nothing
//! doubled. The `worker` and `ingest` executables are built first (see
//! `tools::binaries`), like `cargo run --bin fault-suite` does.

use tools::{
    binaries::Binaries,
    faults::{self, FaultConfig},
};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nothing_is_lost_or_doubled_under_faults() -> anyhow::Result<()> {
    shared::tls::install_crypto_provider();
    let bins = tokio::task::spawn_blocking(|| Binaries::ensure(&["worker", "ingest"])).await??;
    let cfg = FaultConfig::reduced(11);
    let dir = cfg.work_dir.clone();
    let report = faults::run(cfg, &bins).await?;
    let stdout = report.render();
    let result = |key: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("RESULT {key}=")))
            .and_then(|v| v.parse::<u64>().ok())
    };
    assert!(
        report.passed(),
        "fault suite failed; logs in {}:\n{stdout}",
        dir.display()
    );
    assert_eq!(result("lost"), Some(0), "{stdout}");
    assert_eq!(result("duplicates"), Some(0), "{stdout}");
    assert_eq!(result("unexpected"), Some(0), "{stdout}");
    let expected = result("conversions_expected").unwrap_or(0);
    assert!(expected > 100, "the load was real: {stdout}");
    assert_eq!(result("delivered"), Some(expected), "{stdout}");
    // The faults did happen.
    assert!(result("sigkills").unwrap_or(0) >= 3, "{stdout}");
    assert_eq!(result("rabbitmq_restarts"), Some(1), "{stdout}");
    assert_eq!(result("postgres_crashes"), Some(1), "{stdout}");
    assert!(result("faulted_posts").unwrap_or(0) > 0, "{stdout}");
    assert!(stdout.contains("RESULT verdict=pass"), "{stdout}");
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
