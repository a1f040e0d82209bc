//! `sandbox`: serves the fake HubSpot and the fake impact.com until Ctrl-C.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use sandbox::{ImpactAccount, PortalSeed, Sandbox, SandboxConfig, SubscriptionMode, WebhookTarget};

/// Fakes of HubSpot and impact.com, for trying the connector without either.
#[derive(Debug, Parser)]
#[command(name = "sandbox", version)]
struct Args {
    /// Where the fake HubSpot listens (stands in for https://api.hubapi.com).
    #[arg(long, env = "SANDBOX_HUBSPOT_ADDR", default_value = "127.0.0.1:8081")]
    hubspot_addr: SocketAddr,
    /// Where the fake impact.com listens (stands in for https://api.impact.com).
    #[arg(long, env = "SANDBOX_IMPACT_ADDR", default_value = "127.0.0.1:8082")]
    impact_addr: SocketAddr,
    /// Where HubSpot webhooks go, e.g. http://127.0.0.1:8080/webhooks/hubspot (none: no deliveries).
    #[arg(long, env = "SANDBOX_WEBHOOK_URL")]
    webhook_url: Option<String>,
    /// The public app's client secret: signs webhooks, checked by the token endpoint.
    #[arg(
        long,
        env = "SANDBOX_CLIENT_SECRET",
        default_value = "sandbox-client-secret"
    )]
    client_secret: String,
    /// The public app's client id.
    #[arg(long, env = "SANDBOX_CLIENT_ID", default_value = "sandbox-client-id")]
    client_id: String,
    /// Private apps' webhook secrets, `PORTAL=SECRET`, comma-separated: those
    /// portals' webhooks are signed with their own secret, not the client secret.
    #[arg(long, env = "SANDBOX_PRIVATE_APP_SECRETS", value_delimiter = ',', value_parser = portal_secret)]
    private_app_secrets: Vec<(u64, String)>,
    /// The app id put in webhook events.
    #[arg(long, env = "SANDBOX_APP_ID", default_value_t = 4242424)]
    app_id: u64,
    /// The developer API key the Webhooks API (`/webhooks/v3/{appId}/...`) accepts as `hapikey`.
    #[arg(
        long,
        env = "SANDBOX_DEVELOPER_API_KEY",
        default_value = "sandbox-developer-key"
    )]
    developer_api_key: String,
    /// Deliver every event, as if the app subscribed to every type and
    /// property (default: only what the app subscribed to, as HubSpot does).
    #[arg(long, env = "SANDBOX_SUBSCRIBE_ALL")]
    subscribe_all: bool,
    /// Portal ids to create, comma-separated. Each gets the private-app token `pat-sandbox-{portal}`.
    #[arg(
        long,
        env = "SANDBOX_PORTALS",
        value_delimiter = ',',
        default_value = "1001"
    )]
    portals: Vec<u64>,
    /// Contacts per portal (companies: a quarter, deals: half).
    #[arg(long, env = "SANDBOX_SIZE", default_value_t = 50)]
    size: usize,
    /// Seed of the generated data.
    #[arg(long, env = "SANDBOX_SEED", default_value_t = 42)]
    seed: u64,
    /// HubSpot requests per portal per rolling 10 s (0: unlimited).
    #[arg(long, env = "SANDBOX_RATE_LIMIT", default_value_t = 110)]
    rate_limit: u32,
    /// Delay added to every HubSpot API answer.
    #[arg(long, env = "SANDBOX_HUBSPOT_LATENCY_MS", default_value_t = 0)]
    hubspot_latency_ms: u64,
    /// Delay added to every impact.com answer.
    #[arg(long, env = "SANDBOX_IMPACT_LATENCY_MS", default_value_t = 0)]
    impact_latency_ms: u64,
    /// The impact.com Account SID accepted.
    #[arg(long, env = "SANDBOX_IMPACT_ACCOUNT_SID", default_value = "IRsandbox")]
    impact_account_sid: String,
    /// Its auth token.
    #[arg(
        long,
        env = "SANDBOX_IMPACT_AUTH_TOKEN",
        default_value = "sandbox-token"
    )]
    impact_auth_token: String,
    /// Its program (campaign) ids, comma-separated.
    #[arg(
        long,
        env = "SANDBOX_IMPACT_PROGRAM",
        value_delimiter = ',',
        default_value = "1000"
    )]
    impact_program: Vec<String>,
}

/// `PORTAL=SECRET`.
fn portal_secret(text: &str) -> Result<(u64, String), String> {
    let (portal, secret) = text
        .split_once('=')
        .ok_or_else(|| "expected PORTAL=SECRET".to_owned())?;
    let portal = portal
        .trim()
        .parse()
        .map_err(|_| "the portal must be a number".to_owned())?;
    Ok((portal, secret.trim().to_owned()))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let cfg = SandboxConfig {
        hubspot_addr: args.hubspot_addr,
        impact_addr: args.impact_addr,
        seed: args.seed,
        portals: args
            .portals
            .iter()
            .map(|p| PortalSeed::sized(*p, args.size))
            .collect(),
        impact_accounts: vec![ImpactAccount {
            account_sid: args.impact_account_sid.clone(),
            auth_token: args.impact_auth_token.clone(),
            program_ids: args.impact_program.clone(),
        }],
        webhook: args.webhook_url.as_ref().map(|url| WebhookTarget {
            app_id: args.app_id,
            portal_secrets: args.private_app_secrets.iter().cloned().collect(),
            ..WebhookTarget::new(url.clone(), args.client_secret.clone())
        }),
        app_id: args.app_id,
        developer_api_key: args.developer_api_key.clone(),
        webhook_subscriptions: if args.subscribe_all {
            SubscriptionMode::All
        } else {
            SubscriptionMode::AsSubscribed
        },
        rate_limit_per_10s: (args.rate_limit > 0).then_some(args.rate_limit),
        hubspot_latency: Duration::from_millis(args.hubspot_latency_ms),
        impact_latency: Duration::from_millis(args.impact_latency_ms),
        oauth_client_id: args.client_id.clone(),
        oauth_client_secret: args.client_secret.clone(),
        ..SandboxConfig::default()
    };
    let sandbox = Sandbox::start(cfg).await?;
    let hs = sandbox.hubspot_url();
    let im = sandbox.impact_url();
    println!("fake HubSpot    {hs}  (CRM API, OAuth token endpoint {hs}/oauth/2026-03/token)");
    println!(
        "  authorize     {hs}/oauth/authorize?client_id={}&redirect_uri=...&state=...",
        args.client_id
    );
    println!("  control API   {hs}/_sandbox  (JSON: portals, counters, webhook stats)");
    for p in &args.portals {
        println!("  portal {p}  private-app token pat-sandbox-{p}");
    }
    match &args.webhook_url {
        Some(url) => println!("  webhooks ->   {url}  (signed v1 + v3 with the client secret)"),
        None => println!(
            "  webhooks      no target URL yet (PUT {hs}/webhooks/v3/{}/settings, or --webhook-url)",
            args.app_id
        ),
    }
    if args.subscribe_all {
        println!("  subscriptions every event delivered (--subscribe-all)");
    } else {
        println!(
            "  subscriptions only what app {} subscribed to: `worker subscriptions --apply` with CONNECTOR_HUBSPOT_APP_ID={} CONNECTOR_HUBSPOT_DEVELOPER_API_KEY={}",
            args.app_id, args.app_id, args.developer_api_key
        );
    }
    println!(
        "fake impact.com {im}  (POST /Advertisers/{}/Conversions)",
        args.impact_account_sid
    );
    println!("  what arrived  {im}/  (HTML)  and  {im}/_sandbox/submissions  (JSON)");
    println!("Ctrl-C stops.");
    // Ctrl-C for people, SIGTERM for Docker and service managers.
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r?,
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c().await?;
    println!("stopping");
    sandbox.shutdown().await;
    Ok(())
}
