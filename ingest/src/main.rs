//! `ingest`: the webhook endpoint. Configuration comes from `CONNECTOR_*`
//! environment variables (and the optional file named by `CONNECTOR_CONFIG`).

use clap::Parser;
use shared::config::Settings;
use tokio_util::sync::CancellationToken;

/// HubSpot webhook ingest: verifies signatures and enqueues events in RabbitMQ.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Check the configuration and exit.
    #[arg(long)]
    check_config: bool,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("ingest: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    shared::telemetry::init_logging(settings.log_format, &settings.log);
    if let Err(e) = settings.validate_ingest() {
        eprintln!("ingest: {e}");
        return std::process::ExitCode::from(2);
    }
    if cli.check_config {
        println!("configuration OK");
        return std::process::ExitCode::SUCCESS;
    }
    let listener = match tokio::net::TcpListener::bind(settings.ingest_addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!(
                "ingest: cannot listen on {} (CONNECTOR_INGEST_ADDR): {e}",
                settings.ingest_addr
            );
            return std::process::ExitCode::from(2);
        }
    };
    let shutdown = CancellationToken::new();
    tokio::spawn(shutdown_on_signal(shutdown.clone()));
    match ingest::run(settings, listener, shutdown).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "ingest failed");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Cancels `token` on Ctrl-C or SIGTERM (what Docker and systemd send).
async fn shutdown_on_signal(token: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        () = term => {}
    }
    tracing::info!("shutting down: finishing in-flight requests");
    token.cancel();
}
