//! Command line: `run` (default), `migrate`, `portal apply|export|list`,
//! `subscriptions`, `prune`, `keys status|rotate`.
//! `dlq list|show|replay|discard`, `adjustments list`, `backfill`,
//! `conversions list`, `privacy erase`.

use std::{io::Read, path::PathBuf};

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use domain::{events::PortalId, portal::PortalDocument};
use shared::{config::Settings, crypto::SecretCipher, db};
use sqlx::PgPool;

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
    /// The webhook subscriptions the HubSpot app needs for every portal's triggers.
    Subscriptions {
        /// Print the app configuration's webhooks section (JSON) instead of a table.
        #[arg(long)]
        json: bool,
        /// Warn about subscriptions without any event received in this many days.
        #[arg(long, default_value_t = 7)]
        days: u32,
    },
    /// Delete processed events and delivered conversions past their retention.
    Prune,
    /// Encryption keys of stored secrets.
    #[command(subcommand)]
    Keys(crate::ops::cli::KeysCommand),
    /// The dead-letter store: list, show, replay, discard.
    #[command(subcommand)]
    Dlq(crate::dlq::cli::DlqCommand),
    /// Reversals and modifications of delivered conversions.
    #[command(subcommand)]
    Adjustments(crate::adjust::cli::AdjustmentsCommand),
    /// Re-scan HubSpot for what triggers would have fired, and convert it.
    Backfill(crate::backfill::BackfillArgs),
    /// Conversions with their delivery status and submission outcome.
    #[command(subcommand)]
    Conversions(crate::ops::records::ConversionsCommand),
    /// Personal data: erase what is held about a contact.
    #[command(subcommand)]
    Privacy(crate::ops::records::PrivacyCommand),
}

/// `portal` subcommands.
#[derive(Debug, Subcommand)]
pub enum PortalCommand {
    /// Create or replace a portal from a JSON document (`-` reads stdin).
    Apply {
        /// The document.
        file: PathBuf,
    },
    /// Print a portal's document (secrets omitted).
    Export {
        /// The HubSpot portal id.
        portal_id: u64,
    },
    /// List portals.
    List {
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

pub(crate) async fn pool(settings: &Settings) -> anyhow::Result<PgPool> {
    let pool = db::connect(&settings.database_url, 2)
        .await
        .context("connecting to PostgreSQL (CONNECTOR_DATABASE_URL)")?;
    db::migrate(&pool).await.context("applying migrations")?;
    Ok(pool)
}

/// `worker migrate`.
pub async fn migrate(settings: &Settings) -> anyhow::Result<()> {
    pool(settings).await?;
    println!("migrations applied");
    Ok(())
}

/// `worker portal ...`; output goes to `out`, advice to stderr.
pub async fn portal(
    settings: &Settings,
    cmd: PortalCommand,
    out: &mut impl std::io::Write,
) -> anyhow::Result<()> {
    match cmd {
        PortalCommand::Apply { file } => {
            let text = if file.as_os_str() == "-" {
                let mut s = String::new();
                std::io::stdin()
                    .read_to_string(&mut s)
                    .context("reading stdin")?;
                s
            } else {
                std::fs::read_to_string(&file)
                    .with_context(|| format!("reading {}", file.display()))?
            };
            let cipher = SecretCipher::from_settings(settings)?;
            let pool = pool(settings).await?;
            let (id, created, warnings) = apply_text(&pool, &cipher, &text, &actor()).await?;
            for w in &warnings {
                eprintln!("warning: {w}");
            }
            writeln!(
                out,
                "portal {id} {}",
                if created { "created" } else { "updated" }
            )?;
        }
        PortalCommand::Export { portal_id } => {
            let pool = pool(settings).await?;
            let doc = export(&pool, PortalId(portal_id)).await?;
            writeln!(out, "{}", serde_json::to_string_pretty(&doc)?)?;
        }
        PortalCommand::List { json } => {
            let pool = pool(settings).await?;
            let portals = db::portals::list(&pool).await?;
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&portals)?)?;
            } else {
                writeln!(
                    out,
                    "{:<12} {:<12} {:<12} {:<20} {:<10} {:<8} UPDATED",
                    "PORTAL", "STATUS", "HUBSPOT", "IMPACT SID", "PROGRAM", "CREDS"
                )?;
                for p in portals {
                    writeln!(
                        out,
                        "{:<12} {:<12} {:<12} {:<20} {:<10} {:<8} {}",
                        p.portal_id,
                        p.status,
                        p.hubspot_auth,
                        p.impact_account_sid.unwrap_or_else(|| "-".into()),
                        p.impact_program_id.unwrap_or_else(|| "-".into()),
                        p.credentials_status,
                        p.updated_at.format("%Y-%m-%d %H:%M:%S"),
                    )?;
                }
            }
        }
    }
    Ok(())
}

/// Parses, validates and applies a document. Returns (portal, created, warnings).
pub async fn apply_text(
    pool: &PgPool,
    cipher: &SecretCipher,
    text: &str,
    actor: &str,
) -> anyhow::Result<(PortalId, bool, Vec<String>)> {
    let validated = PortalDocument::parse(text)?.validate()?;
    let created = db::portals::apply(pool, cipher, &validated, actor).await?;
    Ok((validated.config.portal_id, created, validated.warnings))
}

/// The document of a stored portal, secrets omitted.
pub async fn export(pool: &PgPool, portal: PortalId) -> anyhow::Result<PortalDocument> {
    let stored = db::portals::load(pool, None, portal)
        .await?
        .with_context(|| format!("portal {portal} does not exist"))?;
    let config = stored
        .config
        .with_context(|| format!("portal {portal} has no impact.com settings yet"))?;
    Ok(PortalDocument::export(&config, stored.auth_kind))
}

/// Who applies: the operating-system user, for the audit log.
fn actor() -> String {
    format!(
        "cli:{}",
        std::env::var("USER").unwrap_or_else(|_| "unknown".into())
    )
}
