//! What every service binary does around its library's `run`: load and
//! check the settings, start logging, and stop on Ctrl-C or SIGTERM; and
//! (feature `http`) serve HTTP within timeouts and caps ([`serve`]).

#[cfg(feature = "http")]
pub mod serve;

use std::{net::SocketAddr, process::ExitCode};

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::{ConfigError, Settings};

/// Loads the settings, starts logging (with `log_suffix` appended to the
/// filter, e.g. `,sqlx=warn`) and runs `check`; a problem is printed as
/// `process: problem` and gives exit code 2. With `check_only`
/// (`--check-config`) a good configuration ends the process with success.
pub fn settings(
    process: &str,
    log_suffix: &str,
    check_only: bool,
    check: impl FnOnce(&Settings) -> Result<(), ConfigError>,
) -> Result<Settings, ExitCode> {
    let settings = Settings::load().map_err(|e| {
        eprintln!("{process}: {e}");
        ExitCode::from(2)
    })?;
    crate::telemetry::init_logging(
        settings.log_format,
        &format!("{}{log_suffix}", settings.log),
    );
    check(&settings).map_err(|e| {
        eprintln!("{process}: {e}");
        ExitCode::from(2)
    })?;
    if check_only {
        println!("configuration OK");
        return Err(ExitCode::SUCCESS);
    }
    Ok(settings)
}

/// The exit code of a service that ran: failure is logged with its cause chain.
pub fn exit(process: &str, result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "{process} failed");
            ExitCode::FAILURE
        }
    }
}

/// Binds `addr` (the setting `name`); a failure is printed as
/// `process: cannot listen on ...` and gives exit code 2.
pub async fn bind(process: &str, addr: SocketAddr, name: &str) -> Result<TcpListener, ExitCode> {
    TcpListener::bind(addr).await.map_err(|e| {
        eprintln!("{process}: cannot listen on {addr} ({name}): {e}");
        ExitCode::from(2)
    })
}

/// Cancels `token` on Ctrl-C or SIGTERM (what Docker, Kubernetes and
/// systemd send): the process then finishes what it has in hand and exits.
pub async fn cancel_on_signal(token: CancellationToken) {
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
    tracing::info!("shutdown requested: finishing what is in hand");
    token.cancel();
}
