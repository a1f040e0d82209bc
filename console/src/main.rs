//! `console`: the connector website, its JSON API and the operators' admin
//! API. Configuration comes from `CONNECTOR_*` environment variables (and
//! the optional file named by `CONNECTOR_CONFIG`).

use std::net::SocketAddr;

use clap::Parser;
use shared::config::Settings;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The connector website, `/api/v1` and the admin API.
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
            eprintln!("console: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    shared::telemetry::init_logging(settings.log_format, &settings.log);
    if let Err(e) = settings.validate_console() {
        eprintln!("console: {e}");
        return std::process::ExitCode::from(2);
    }
    if cli.check_config {
        println!("configuration OK");
        return std::process::ExitCode::SUCCESS;
    }
    let Some(listener) = bind(settings.console_addr, "CONNECTOR_CONSOLE_ADDR").await else {
        return std::process::ExitCode::from(2);
    };
    // The admin API only with an address and a non-empty operator token.
    let admin = match (settings.admin_addr, settings.operator_token()) {
        (Some(addr), Some(_)) => match bind(addr, "CONNECTOR_ADMIN_ADDR").await {
            Some(l) => Some(l),
            None => return std::process::ExitCode::from(2),
        },
        (Some(_), None) => {
            tracing::warn!("CONNECTOR_ADMIN_TOKEN is unset or empty: the admin API stays off");
            None
        }
        (None, _) => None,
    };
    let shutdown = CancellationToken::new();
    tokio::spawn(shutdown_on_signal(shutdown.clone()));
    match console::run(settings, listener, admin, shutdown).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "console failed");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn bind(addr: SocketAddr, name: &str) -> Option<TcpListener> {
    match TcpListener::bind(addr).await {
        Ok(l) => Some(l),
        Err(e) => {
            eprintln!("console: cannot listen on {addr} ({name}): {e}");
            None
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
