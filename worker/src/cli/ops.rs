//! The operations subcommands' handlers.

use std::io::Write;

use clap::Subcommand;
use shared::{config::Settings, crypto::SecretCipher};

use crate::ops::{keys, retention};

/// `keys` subcommands.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// How many stored secrets each key id sealed.
    Status,
    /// Re-encrypt every stored secret under the current key (online).
    Rotate,
}

/// `worker prune`.
pub async fn prune(settings: &Settings, out: &mut impl Write) -> anyhow::Result<()> {
    let pool = super::common::pool(settings).await?;
    let p = retention::prune(
        &pool,
        settings.retention_events_days,
        settings.retention_conversions_days,
    )
    .await?;
    write!(
        out,
        "pruned {} webhook events and {} delivered conversions",
        p.events, p.conversions
    )?;
    if p.orphaned > 0 {
        write!(out, ", and {} rows of deleted accounts", p.orphaned)?;
    }
    writeln!(out)?;
    Ok(())
}

/// `worker keys ...`.
pub async fn keys(
    settings: &Settings,
    cmd: KeysCommand,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let pool = super::common::pool(settings).await?;
    match cmd {
        KeysCommand::Status => {
            let cipher = SecretCipher::from_settings(settings).ok();
            for (id, n) in keys::status(&pool).await? {
                let mark = if cipher.as_ref().is_some_and(|c| c.key_id() == id) {
                    " (current)"
                } else {
                    ""
                };
                writeln!(out, "key {id}{mark}: {n} secrets")?;
            }
        }
        KeysCommand::Rotate => {
            let cipher = SecretCipher::from_settings(settings)?;
            let n = keys::rotate(&pool, &cipher).await?;
            writeln!(
                out,
                "re-encrypted {n} secrets under key {}",
                cipher.key_id()
            )?;
        }
    }
    Ok(())
}
