//! `worker portal apply|export|list`: portal configuration documents.

use std::{io::Read, path::PathBuf};

use clap::Subcommand;

use anyhow::Context as _;
use domain::{
    events::PortalId,
    portal::{HubSpotAuthKind, PortalDocument},
};
use shared::{config::Settings, crypto::SecretCipher, db};
use sqlx::PgPool;

use super::common::{actor, pool};

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
    let mut doc = PortalDocument::export(&config, stored.auth_kind);
    // Whether the private app's webhook secret is stored (never its value).
    doc.hubspot.webhook_secret_set =
        (stored.auth_kind == HubSpotAuthKind::PrivateApp).then_some(stored.webhook_secret_set);
    Ok(doc)
}
