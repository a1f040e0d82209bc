//! `worker`: thin over the library (see `worker --help`).

use std::process::ExitCode;

use clap::Parser;
use shared::service;
use tokio_util::sync::CancellationToken;
use worker::cli::{Cli, Command};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // PostgreSQL notices ("relation ... already exists, skipping") are noise.
    // Every command refuses a set-but-empty client secret (OAuth's key).
    let check = |s: &shared::config::Settings| s.client_secret().map(|_| ());
    let settings = match service::settings("worker", ",sqlx=warn", false, check) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let result = match cli.command.unwrap_or(Command::Run) {
        Command::Run => {
            let shutdown = CancellationToken::new();
            tokio::spawn(service::cancel_on_signal(shutdown.clone()));
            worker::run(settings, shutdown).await
        }
        Command::Migrate => worker::cli::migrate(&settings).await,
        Command::Portal(cmd) => worker::cli::portal(&settings, cmd, &mut std::io::stdout()).await,
        Command::Subscriptions(args) => {
            worker::cli::subscriptions::run(&settings, args, &mut std::io::stdout()).await
        }
        Command::Prune => worker::cli::ops::prune(&settings, &mut std::io::stdout()).await,
        Command::Keys(cmd) => worker::cli::ops::keys(&settings, cmd, &mut std::io::stdout()).await,
        Command::Dlq(cmd) => worker::cli::dlq::run(&settings, cmd, &mut std::io::stdout()).await,
        Command::Conversions(cmd) => {
            worker::cli::records::conversions(&settings, cmd, &mut std::io::stdout()).await
        }
        Command::Privacy(cmd) => {
            worker::cli::records::privacy(&settings, cmd, &mut std::io::stdout()).await
        }
        Command::Adjustments(cmd) => {
            worker::cli::adjustments::run(&settings, cmd, &mut std::io::stdout()).await
        }
        Command::Backfill(args) => {
            worker::cli::backfill::run(&settings, args, &mut std::io::stdout()).await
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
