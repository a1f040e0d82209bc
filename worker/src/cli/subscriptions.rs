//! `worker subscriptions [--json | --apply [--dry-run]]`.

use std::io::Write;

use anyhow::anyhow;
use shared::config::Settings;

use crate::ops::{subscriptions, webhooks_app};

/// What `worker subscriptions` does.
#[derive(Debug, Clone, clap::Args)]
pub struct SubscriptionsArgs {
    /// Print the HubSpot developer project's webhooks component
    /// (`src/app/webhooks/webhooks-hsmeta.json`) instead of a table.
    #[arg(long, conflicts_with_all = ["apply", "dry_run"])]
    pub json: bool,
    /// Create, re-activate and pause the app's subscriptions and set its
    /// target URL through HubSpot's Webhooks API (needs
    /// CONNECTOR_HUBSPOT_APP_ID, CONNECTOR_HUBSPOT_DEVELOPER_API_KEY and
    /// CONNECTOR_PUBLIC_URL).
    #[arg(long)]
    pub apply: bool,
    /// Show what --apply would change, changing nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Warn about subscriptions without any event received in this many days.
    #[arg(long, default_value_t = 7)]
    pub days: u32,
}

/// `worker subscriptions`.
pub async fn run(
    settings: &Settings,
    args: SubscriptionsArgs,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    if args.apply || args.dry_run {
        return apply(settings, args.dry_run, out).await;
    }
    let pool = super::common::pool(settings).await?;
    let needed = subscriptions::load(&pool, settings.privacy_erase_on_deletion).await?;
    let target = webhooks_app::target_url(settings)
        .unwrap_or_else(|| format!("https://YOUR-CONNECTOR-HOST{}", webhooks_app::WEBHOOK_PATH));
    if args.json {
        let component = domain::subscriptions::hsmeta::component(&needed, &target);
        writeln!(out, "{}", serde_json::to_string_pretty(&component)?)?;
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
                if portals.is_empty() {
                    "(every portal)".to_owned()
                } else {
                    portals.join(",")
                }
            )?;
        }
        writeln!(
            out,
            "(--apply creates them in the HubSpot app; --json prints the developer project's webhooks-hsmeta.json)"
        )?;
    }
    warn_never_seen(&pool, &needed, args.days).await
}

async fn warn_never_seen(
    pool: &sqlx::PgPool,
    needed: &[domain::subscriptions::Needed],
    days: u32,
) -> anyhow::Result<()> {
    for n in subscriptions::never_seen(pool, needed, days).await? {
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

/// `--apply` / `--dry-run`: the configuration is checked before the database is read.
async fn apply(settings: &Settings, dry_run: bool, out: &mut impl Write) -> anyhow::Result<()> {
    let (app_id, api) = webhooks_app::client(settings)?;
    let target = webhooks_app::target_url(settings).ok_or_else(|| {
        anyhow!(
            "CONNECTOR_PUBLIC_URL is not set: the public base URL HubSpot calls (the target URL is it + {})",
            webhooks_app::WEBHOOK_PATH
        )
    })?;
    let pool = super::common::pool(settings).await?;
    let needed = subscriptions::load(&pool, settings.privacy_erase_on_deletion).await?;
    webhooks_app::apply(&api, app_id, &needed, &target, dry_run, out).await?;
    Ok(())
}
