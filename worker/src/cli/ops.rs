//! The operations subcommands' handlers.

use std::io::Write;

use clap::Subcommand;
use shared::{config::Settings, crypto::SecretCipher};

use crate::ops::{keys, retention, subscriptions};

/// `keys` subcommands.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// How many stored secrets each key id sealed.
    Status,
    /// Re-encrypt every stored secret under the current key (online).
    Rotate,
}

/// `worker subscriptions`.
pub async fn subscriptions(
    settings: &Settings,
    json: bool,
    days: u32,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let pool = super::common::pool(settings).await?;
    let needed = subscriptions::load(&pool).await?;
    let base = settings
        .public_url
        .as_deref()
        .unwrap_or("https://YOUR-CONNECTOR-HOST")
        .trim_end_matches('/');
    let target = format!("{base}/webhooks/hubspot");
    if json {
        writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&domain::subscriptions::app_config(&needed, &target))?
        )?;
    } else {
        writeln!(out, "Webhook target URL: {target}")?;
        writeln!(out, "{:<26} {:<28} PORTALS", "SUBSCRIPTION", "PROPERTY")?;
        for n in &needed {
            let portals: Vec<String> = n.portals.iter().map(i64::to_string).collect();
            writeln!(
                out,
                "{:<26} {:<28} {}",
                n.subscription_type,
                n.property.as_deref().unwrap_or("-"),
                portals.join(",")
            )?;
        }
        writeln!(
            out,
            "(--json prints the app configuration's webhooks section)"
        )?;
    }
    for n in subscriptions::never_seen(&pool, &needed, days).await? {
        let what = match &n.property {
            Some(p) => format!("{} of {p}", n.subscription_type),
            None => n.subscription_type.clone(),
        };
        eprintln!(
            "warning: no {what} event received in the last {days} days, though triggers of portal(s) {:?} need it: is the subscription active in the HubSpot app?",
            n.portals
        );
    }
    Ok(())
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
