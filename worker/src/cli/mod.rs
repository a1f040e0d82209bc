//! Command line: `run` (default), `migrate`, `portal apply|export|list`,
//! `subscriptions`, `prune`, `keys status|rotate`.
//! `dlq list|show|replay|discard`, `adjustments list`, `backfill`,
//! `conversions list`, `privacy erase`. One module per command group.

pub mod adjustments;
pub mod backfill;
mod common;
pub mod dlq;
pub mod ops;
pub mod portal;
pub mod records;
pub mod subscriptions;

use clap::{Parser, Subcommand};
use shared::config::Settings;

pub use common::{actor, pool};
pub use portal::{PortalCommand, apply_text, export, portal};

/// HubSpot → impact.com conversion worker.
#[derive(Debug, Parser)]
#[command(name = "worker", version, about)]
pub struct Cli {
    /// What to do (default: run).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Consume the work queue and deliver conversions (the default).
    Run,
    /// Apply the database migrations and exit.
    Migrate,
    /// Portal configuration documents.
    #[command(subcommand)]
    Portal(PortalCommand),
    /// The webhook subscriptions the HubSpot app needs: a table, the
    /// developer project's webhooks component (--json), or applied to the
    /// app through HubSpot's Webhooks API (--apply).
    Subscriptions(subscriptions::SubscriptionsArgs),
    /// Delete processed events and delivered conversions past their retention.
    Prune,
    /// Encryption keys of stored secrets.
    #[command(subcommand)]
    Keys(ops::KeysCommand),
    /// The dead-letter store: list, show, replay, discard.
    #[command(subcommand)]
    Dlq(dlq::DlqCommand),
    /// Reversals and modifications of delivered conversions.
    #[command(subcommand)]
    Adjustments(adjustments::AdjustmentsCommand),
    /// Re-scan HubSpot for what triggers would have fired, and convert it.
    Backfill(crate::backfill::BackfillArgs),
    /// Conversions with their delivery status and submission outcome.
    #[command(subcommand)]
    Conversions(records::ConversionsCommand),
    /// Personal data: erase what is held about a contact.
    #[command(subcommand)]
    Privacy(records::PrivacyCommand),
}

/// `worker migrate`.
pub async fn migrate(settings: &Settings) -> anyhow::Result<()> {
    pool(settings).await?;
    println!("migrations applied");
    Ok(())
}
