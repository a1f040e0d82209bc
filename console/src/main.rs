//! `console`: the connector website, its JSON API and the operators' admin
//! API. Configuration comes from `CONNECTOR_*` environment variables (and
//! the optional file named by `CONNECTOR_CONFIG`).

use std::process::ExitCode;

use clap::Parser;
use shared::service;
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
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings =
        match service::settings("console", "", cli.check_config, |s| s.validate_console()) {
            Ok(s) => s,
            Err(code) => return code,
        };
    let listener =
        match service::bind("console", settings.console_addr, "CONNECTOR_CONSOLE_ADDR").await {
            Ok(l) => l,
            Err(code) => return code,
        };
    // The admin listener: CONNECTOR_ADMIN_ADDR, or loopback when an
    // operator token is set (the tokens were checked above).
    let tokens = settings.operator_tokens().unwrap_or_default();
    let admin = match settings.admin_listen_addr(&tokens) {
        Some(addr) => match service::bind("console", addr, "CONNECTOR_ADMIN_ADDR").await {
            Ok(l) => Some(l),
            Err(code) => return code,
        },
        None => {
            tracing::info!(
                "no operator token and no CONNECTOR_ADMIN_ADDR: no admin API, no /metrics"
            );
            None
        }
    };
    let shutdown = CancellationToken::new();
    tokio::spawn(service::cancel_on_signal(shutdown.clone()));
    service::exit(
        "console",
        console::run(settings, listener, admin, shutdown).await,
    )
}
