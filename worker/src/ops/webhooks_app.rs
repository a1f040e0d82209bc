//! `worker subscriptions --apply`: makes the HubSpot app's webhook
//! subscriptions and target URL what the portals need, through HubSpot's
//! Webhooks API (`shared::hubspot::webhooks_api`), idempotently: the plan
//! (`domain::subscriptions::plan`) is empty once applied.

use std::io::Write;
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use domain::subscriptions::Needed;
use domain::subscriptions::plan::{Plan, Step, plan};
use secrecy::ExposeSecret as _;
use shared::{config::Settings, hubspot::webhooks_api::WebhooksApi};

/// The path ingest serves webhooks on, appended to `CONNECTOR_PUBLIC_URL`.
pub const WEBHOOK_PATH: &str = "/webhooks/hubspot";

/// The target URL HubSpot must call: `CONNECTOR_PUBLIC_URL` + the webhook path.
pub fn target_url(settings: &Settings) -> Option<String> {
    let base = settings.public_url.as_deref()?.trim().trim_end_matches('/');
    (!base.is_empty()).then(|| format!("{base}{WEBHOOK_PATH}"))
}

/// The app's Webhooks API client from the configuration; a missing or
/// malformed variable is named in the error.
pub fn client(settings: &Settings) -> anyhow::Result<(u64, WebhooksApi)> {
    let app_id = settings
        .hubspot_app_id
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| anyhow!("CONNECTOR_HUBSPOT_APP_ID is not set: the id of the HubSpot app whose webhooks are managed (the app's page in the developer account shows it)"))?;
    let app_id: u64 = app_id.parse().ok().filter(|id| *id > 0).ok_or_else(|| {
        anyhow!("CONNECTOR_HUBSPOT_APP_ID must be the app's numeric id, not {app_id:?}")
    })?;
    let key = settings
        .hubspot_developer_api_key
        .clone()
        .filter(|k| !k.expose_secret().trim().is_empty())
        .ok_or_else(|| anyhow!("CONNECTOR_HUBSPOT_DEVELOPER_API_KEY is not set: the developer account's API key, which manages the app's webhooks"))?;
    let http = shared::upstream::client_builder()
        .timeout(Duration::from_secs(30))
        .connect_timeout(Duration::from_secs(5))
        .user_agent(concat!(
            "hubspot-impact-connector/",
            env!("CARGO_PKG_VERSION")
        ))
        .build()
        .context("building the HTTP client")?;
    let api = WebhooksApi::new(http, &settings.hubspot_api_url, app_id, key)
        .context("CONNECTOR_HUBSPOT_API_URL is not a URL")?;
    Ok((app_id, api))
}

/// Reads the app's subscriptions and settings, plans, and (unless
/// `dry_run`) applies the plan, printing each change as it is made.
pub async fn apply(
    api: &WebhooksApi,
    app_id: u64,
    needed: &[Needed],
    target: &str,
    dry_run: bool,
    out: &mut impl Write,
) -> anyhow::Result<Plan> {
    let existing = api.subscriptions().await?;
    let settings = api.settings().await?;
    let p = plan(needed, &existing, settings.as_ref(), target);
    if p.is_empty() {
        writeln!(
            out,
            "HubSpot app {app_id}: nothing to change ({} subscriptions active as needed, target URL {target})",
            p.unchanged.len()
        )?;
        return Ok(p);
    }
    let what = if dry_run { "would change" } else { "changes" };
    writeln!(out, "HubSpot app {app_id}: {} {what}", p.steps.len())?;
    for step in &p.steps {
        if !dry_run {
            run(api, step).await?;
        }
        writeln!(out, "  {}", step.describe(!dry_run))?;
    }
    writeln!(
        out,
        "{} needed subscriptions were already active{}",
        p.unchanged.len(),
        if dry_run {
            " (dry run: nothing changed)"
        } else {
            ""
        }
    )?;
    Ok(p)
}

async fn run(api: &WebhooksApi, step: &Step) -> anyhow::Result<()> {
    match step {
        Step::Settings { to, .. } => {
            api.put_settings(to).await?;
        }
        Step::Create(key) => {
            api.create(key)
                .await
                .with_context(|| format!("creating {key}"))?;
        }
        Step::Activate { id, key } => {
            api.set_active(id, true)
                .await
                .with_context(|| format!("re-activating {key}"))?;
        }
        Step::Pause { id, key, .. } => {
            api.set_active(id, false)
                .await
                .with_context(|| format!("pausing {key}"))?;
        }
    }
    Ok(())
}
