//! `worker adjustments list`: reversals and modifications, newest first.

use clap::Subcommand;
use shared::{config::Settings, db};

/// `adjustments` subcommands.
#[derive(Debug, Subcommand)]
pub enum AdjustmentsCommand {
    /// List adjustments, newest first.
    List {
        /// HubSpot portal id.
        #[arg(long)]
        portal: Option<i64>,
        /// pending, delivered or failed.
        #[arg(long, value_parser = ["pending", "delivered", "failed"])]
        status: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: i64,
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// Runs an `adjustments` subcommand; output goes to `out`.
pub async fn run(
    settings: &Settings,
    cmd: AdjustmentsCommand,
    out: &mut impl std::io::Write,
) -> anyhow::Result<()> {
    let AdjustmentsCommand::List {
        portal,
        status,
        limit,
        json,
    } = cmd;
    let pool = super::common::pool(settings).await?;
    let rows = db::adjustments::list(&pool, portal, status.as_deref(), limit.max(1)).await?;
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<8} {:<12} {:<13} {:<10} {:<12} {:<24} {:<9} {:<4} CREATED",
        "ID", "PORTAL", "KIND", "OBJECT", "CONVERSION", "CAUSE", "STATUS", "TRY"
    )?;
    for r in &rows {
        writeln!(
            out,
            "{:<8} {:<12} {:<13} {:<10} {:<12} {:<24} {:<9} {:<4} {}",
            r.id,
            r.portal_id,
            r.kind,
            r.object_id,
            r.conversion_id,
            r.cause,
            r.status,
            r.attempts,
            r.created_at.format("%Y-%m-%d %H:%M:%S"),
        )?;
        if let Some(e) = &r.last_error {
            writeln!(out, "         last error: {e}")?;
        }
    }
    writeln!(out, "{} adjustment(s)", rows.len())?;
    Ok(())
}
