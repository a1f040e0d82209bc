//! What the tools (and the end-to-end tests, which re-export it) share:
//! isolated settings, signed webhook requests, the broker and database of
//! this machine, the seed guide's mappings and applying a portal document.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use domain::{events::PortalId, portal::PortalDocument, signature};
use lapin::Channel;
use secrecy::SecretString;
use serde_json::{Value, json};
use shared::{config::Settings, crypto::SecretCipher};
use sqlx::{Connection, PgConnection, PgPool};

/// The client secret tests and tools sign with.
pub const TEST_SECRET: &str = "test-client-secret-0123456789";

/// A fixed test encryption key (base64 of 32 bytes).
pub const KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

/// Where ingest takes HubSpot's webhooks.
pub const WEBHOOK_PATH: &str = "/webhooks/hubspot";

/// The AMQP URL of the local broker (overridable with `CONNECTOR_AMQP_URL`).
pub fn amqp_url() -> String {
    std::env::var("CONNECTOR_AMQP_URL").unwrap_or_else(|_| Settings::defaults().amqp_url)
}

/// A queue prefix no other run uses.
pub fn unique_prefix() -> String {
    format!("t{}.", uuid::Uuid::new_v4().simple())
}

/// Default settings isolated under a fresh queue prefix, with the test secret.
pub fn test_settings() -> Settings {
    let mut s = Settings::defaults();
    s.amqp_url = amqp_url();
    s.queue_prefix = unique_prefix();
    s.hubspot_client_secret = Some(SecretString::from(TEST_SECRET));
    // Ingest reads per-portal webhook secrets from a database only in the
    // tests that give it one of its own.
    s.webhook_secrets_db = false;
    s.ingest_addr = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    s.log = "warn".into();
    s
}

/// Epoch milliseconds now.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A webhook request signed with v3 (and v1) the way HubSpot signs it.
pub fn signed_request(
    client: &reqwest::Client,
    url: &str,
    secret: &str,
    body: Vec<u8>,
) -> reqwest::RequestBuilder {
    let ts = now_ms().to_string();
    let v3 = signature::sign_v3(secret.as_bytes(), "POST", url, &body, &ts);
    let v1 = signature::sign_v1(secret.as_bytes(), &body);
    client
        .post(url)
        .header("content-type", "application/json")
        .header("X-HubSpot-Signature-v3", v3)
        .header("X-HubSpot-Request-Timestamp", ts)
        .header("X-HubSpot-Signature", v1)
        .header("X-HubSpot-Signature-Version", "v1")
        .body(body)
}

/// A JSON array of `n` HubSpot-shaped events for `portal`, starting at `first_id`.
pub fn event_batch(portal: u64, first_id: u64, n: usize) -> Vec<u8> {
    let occurred = now_ms();
    let events: Vec<Value> = (0..n as u64)
        .map(|i| {
            json!({
                "eventId": first_id + i, "subscriptionId": 12345, "portalId": portal,
                "appId": 54321, "occurredAt": occurred, "subscriptionType": "contact.creation",
                "attemptNumber": 0, "objectId": first_id + i, "changeSource": "CRM", "changeFlag": "NEW"
            })
        })
        .collect();
    serde_json::to_vec(&events).unwrap_or_default()
}

/// Opens a channel on the local broker.
pub async fn broker_channel() -> anyhow::Result<(lapin::Connection, Channel)> {
    let conn = shared::broker::connect(&amqp_url(), "connector-tests").await?;
    let ch = conn.create_channel().await?;
    Ok((conn, ch))
}

/// Deletes every queue and the exchange of a run's topology.
pub async fn delete_topology(ch: &Channel, settings: &Settings) -> anyhow::Result<()> {
    let topo = shared::broker::Topology::from_settings(settings)?;
    for q in topo.queue_names() {
        let _ = ch.queue_delete(q.as_str().into(), Default::default()).await;
    }
    let _ = ch
        .exchange_delete(topo.events_exchange().as_str().into(), Default::default())
        .await;
    Ok(())
}

/// Deletes a run's queues on the local broker.
pub async fn drop_topology(settings: &Settings) -> anyhow::Result<()> {
    let (conn, ch) = broker_channel().await?;
    delete_topology(&ch, settings).await?;
    let _ = conn.close(200, "done".into()).await;
    Ok(())
}

/// PostgreSQL server URL without a database (overridable with `TEST_POSTGRES_URL`).
fn server_url() -> String {
    std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// A uniquely named, empty database; returns its URL.
pub async fn fresh_database() -> anyhow::Result<String> {
    fresh_database_on(&server_url(), "test").await
}

/// [`fresh_database`] on the server `server` (`postgres://user@host:port`),
/// created through its database `admin_db`.
pub async fn fresh_database_on(server: &str, admin_db: &str) -> anyhow::Result<String> {
    let name = format!("worker_{}", uuid::Uuid::new_v4().simple());
    let mut admin = PgConnection::connect(&format!("{server}/{admin_db}")).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await?;
    Ok(format!("{server}/{name}"))
}

/// Drops a database made by [`fresh_database`].
pub async fn drop_database(url: &str) {
    let Some(name) = url.rsplit('/').next().filter(|n| n.starts_with("worker_")) else {
        return;
    };
    if let Ok(mut admin) = PgConnection::connect(&format!("{}/test", server_url())).await {
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .execute(&mut admin)
        .await;
    }
}

/// Validates a portal document and stores it (what `worker portal apply`
/// does); returns the portal's id.
pub async fn apply_portal(
    pool: &PgPool,
    cipher: &SecretCipher,
    doc: &Value,
    actor: &str,
) -> anyhow::Result<PortalId> {
    let validated = PortalDocument::parse(&doc.to_string())?
        .validate()
        .context("invalid portal document")?;
    shared::db::portals::apply(pool, cipher, &validated, actor).await?;
    Ok(validated.config.portal_id)
}

/// The seed guide's contacts table.
pub fn seed_contact_mappings() -> Value {
    json!([
        { "from": "lifecyclestage", "to": "EventTypeCode" },
        { "from": "hs_object_id", "to": "CustomerId" },
        { "from": "contact_[lead_status]_id", "to": "OrderId" },
        { "from": "lastmodifieddate", "to": "EventDate" },
        { "from": "company", "to": "Text3" },
        { "from": "city", "to": "CustomerCity" },
        { "from": "country", "to": "CustomerCountry" },
        { "from": "zip", "to": "CustomerPostCode" },
        { "from": "custom_impact_click_id", "to": "ClickId" }
    ])
}

/// The seed guide's deals table.
pub fn seed_deal_mappings() -> Vec<Value> {
    vec![
        json!({ "from": "deal_[deal stage]", "to": "EventTypeCode" }),
        json!({ "from": "deal_contact_id", "to": "CustomerId" }),
        json!({ "from": "deal_[stage]_id", "to": "OrderId" }),
        json!({ "from": "hs_lastmodifieddate", "to": "EventDate" }),
        json!({ "from": "closedate", "to": "Text3" }),
        json!({ "from": "hs_deal_stage_probability", "to": "Text2" }),
        json!({ "from": "amount", "to": "OrderSubTotal" }),
    ]
}

/// The seed guide's line-item rows (SKU, name, unit price), with the
/// category impact.com requires of every item (a constant: HubSpot line
/// items have no category property); `ItemQuantity{i}` is the line item's
/// quantity unless mapped.
pub fn seed_line_item_mappings() -> Vec<Value> {
    vec![
        json!({ "from": "line_item{i}.hs_sku", "to": "ItemSku{i}" }),
        json!({ "from": "line_item{i}.name", "to": "ItemName{i}" }),
        json!({ "from": "line_item{i}.price", "to": "ItemPrice{i}" }),
        json!({ "const": "Hardware", "to": "ItemCategory{i}" }),
    ]
}
