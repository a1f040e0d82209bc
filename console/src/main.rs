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
    // The admin API only with an address and a non-empty operator token.
    let admin = match (settings.admin_addr, settings.operator_token()) {
        (Some(addr), Some(_)) => match service::bind("console", addr, "CONNECTOR_ADMIN_ADDR").await
        {
            Ok(l) => Some(l),
            Err(code) => return code,
        },
        (Some(_), None) => {
            tracing::warn!("CONNECTOR_ADMIN_TOKEN is unset or empty: the admin API stays off");
            None
        }
        (None, _) => None,
    };
    let shutdown = CancellationToken::new();
    tokio::spawn(service::cancel_on_signal(shutdown.clone()));
    service::exit(
        "console",
        console::run(settings, listener, admin, shutdown).await,
    )
}
