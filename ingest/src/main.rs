//! `ingest`: the webhook endpoint. Configuration comes from `CONNECTOR_*`
//! environment variables (and the optional file named by `CONNECTOR_CONFIG`).

use std::process::ExitCode;

use clap::Parser;
use shared::service;
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
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match service::settings("ingest", "", cli.check_config, ingest::check_config) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let listener =
        match service::bind("ingest", settings.ingest_addr, "CONNECTOR_INGEST_ADDR").await {
            Ok(l) => l,
            Err(code) => return code,
        };
    let shutdown = CancellationToken::new();
    tokio::spawn(service::cancel_on_signal(shutdown.clone()));
    service::exit("ingest", ingest::run(settings, listener, shutdown).await)
}
