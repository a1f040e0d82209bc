//! The `floor` scenario of `bench-pipeline`: the least work the import's
//! conversions need on the same services, as a minimal program in the
//! benchmark's own process — no ingest, no worker:
//!
//! - one confirmed, persistent message per 100 events through RabbitMQ (a
//!   quorum queue, as the worker's), consumed with manual acks;
//! - one batch read per 100 contacts from the fake HubSpot;
//! - one form POST per conversion to the fake impact.com, over kept-alive
//!   connections, at most the worker's delivery concurrency at once;
//! - one durable row per conversion, written with one `INSERT … SELECT
//!   FROM unnest(…)` per 100 (its own transaction), keyed by
//!   `(portal, OrderId)`.
//!
//! The rate is the conversions over the time from the first publish to the
//! last message acknowledged.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use futures::StreamExt as _;
use lapin::{
    BasicProperties,
    options::{
        BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
        ConfirmSelectOptions, QueueDeclareOptions, QueueDeleteOptions,
    },
    types::{AMQPValue, FieldTable},
};
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio::sync::Semaphore;

use crate::support;

/// Events per message (and objects per batch read).
const PER_MESSAGE: usize = 100;

/// What the floor needs: where the services are.
pub struct FloorTarget<'a> {
    /// The fake HubSpot's base URL.
    pub hubspot_url: &'a str,
    /// The fake impact.com's base URL.
    pub impact_url: &'a str,
    /// The broker.
    pub amqp_url: &'a str,
    /// A fresh database.
    pub pool: &'a PgPool,
    /// The portal the contacts are in.
    pub portal: u64,
    /// Messages worked on at once (the worker's `CONNECTOR_WORKER_CONCURRENCY`).
    pub messages_at_once: u16,
    /// POSTs in flight at once (the worker's delivery concurrency).
    pub posts_at_once: usize,
}

/// What the floor did.
#[derive(Debug, Clone, Copy)]
pub struct FloorResult {
    /// Conversions posted and recorded.
    pub conversions: u64,
    /// First publish to last acknowledgement, in seconds.
    pub span_s: f64,
}

/// Converts the contacts `ids` of `t.portal`.
pub async fn run(t: &FloorTarget<'_>, ids: &[u64]) -> anyhow::Result<FloorResult> {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS floor_conversions (
             portal_id bigint NOT NULL, order_id text NOT NULL, payload text NOT NULL,
             queued_uri text, delivered_at timestamptz NOT NULL DEFAULT clock_timestamp(),
             PRIMARY KEY (portal_id, order_id))",
    )
    .execute(t.pool)
    .await?;
    let conn = shared::broker::connect(t.amqp_url, "bench-floor").await?;
    let publish_ch = conn.create_channel().await?;
    let consume_ch = conn.create_channel().await?;
    let queue = format!("{}bench.floor", support::unique_prefix());
    let mut args = FieldTable::default();
    args.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    let durable = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    publish_ch
        .queue_declare(queue.as_str().into(), durable, args)
        .await?;
    publish_ch
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    consume_ch
        .basic_qos(t.messages_at_once, BasicQosOptions::default())
        .await?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(t.posts_at_once)
        .build()?;
    let posts = Arc::new(Semaphore::new(t.posts_at_once));
    let started = Instant::now();
    let messages = ids.chunks(PER_MESSAGE).count();
    let publisher = {
        let (ch, queue) = (publish_ch.clone(), queue.clone());
        let bodies: Vec<Vec<u8>> = ids
            .chunks(PER_MESSAGE)
            .map(|chunk| events_body(t.portal, chunk))
            .collect();
        tokio::spawn(async move {
            let mut confirms = Vec::with_capacity(bodies.len());
            for body in bodies {
                confirms.push(
                    ch.basic_publish(
                        "".into(),
                        queue.as_str().into(),
                        BasicPublishOptions::default(),
                        &body,
                        BasicProperties::default().with_delivery_mode(2),
                    )
                    .await?,
                );
            }
            for c in confirms {
                c.await?;
            }
            anyhow::Ok(())
        })
    };
    let mut consumer = consume_ch
        .basic_consume(
            queue.as_str().into(),
            "bench-floor".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let mut tasks = tokio::task::JoinSet::new();
    let mut converted = 0u64;
    let mut received = 0usize;
    while received < messages {
        let delivery = tokio::time::timeout(Duration::from_secs(120), consumer.next())
            .await
            .context("the floor's queue went quiet")?
            .context("the floor's consumer ended")??;
        received += 1;
        let job = Job {
            http: http.clone(),
            posts: posts.clone(),
            pool: t.pool.clone(),
            hubspot_url: t.hubspot_url.to_owned(),
            impact_url: t.impact_url.to_owned(),
            portal: t.portal,
        };
        tasks.spawn(async move {
            let n = job.convert(&delivery.data).await?;
            delivery.ack(BasicAckOptions::default()).await?;
            anyhow::Ok(n)
        });
        while let Some(done) = tasks.try_join_next() {
            converted += done??;
        }
    }
    while let Some(done) = tasks.join_next().await {
        converted += done??;
    }
    let span_s = started.elapsed().as_secs_f64();
    publisher.await??;
    consume_ch
        .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
        .await?;
    let _ = conn.close(200, "done".into()).await;
    Ok(FloorResult {
        conversions: converted,
        span_s,
    })
}

/// A message of `ids`' creation events, as HubSpot sends them.
fn events_body(portal: u64, ids: &[u64]) -> Vec<u8> {
    let events: Vec<Value> = ids
        .iter()
        .map(|id| {
            json!({
                "eventId": id, "subscriptionId": 1, "portalId": portal, "appId": 1,
                "occurredAt": 1_700_000_000_000u64 + id, "subscriptionType": "contact.creation",
                "attemptNumber": 0, "objectId": id, "changeSource": "IMPORT", "changeFlag": "CREATED",
            })
        })
        .collect();
    serde_json::to_vec(&events).unwrap_or_default()
}

/// One message's work.
struct Job {
    http: reqwest::Client,
    posts: Arc<Semaphore>,
    pool: PgPool,
    hubspot_url: String,
    impact_url: String,
    portal: u64,
}

impl Job {
    async fn convert(&self, body: &[u8]) -> anyhow::Result<u64> {
        let events: Vec<Value> = serde_json::from_slice(body)?;
        let inputs: Vec<Value> = events
            .iter()
            .map(|e| json!({ "id": e["objectId"].to_string() }))
            .collect();
        let read: Value = self
            .http
            .post(format!(
                "{}/crm/v3/objects/contacts/batch/read",
                self.hubspot_url
            ))
            .bearer_auth(format!("pat-sandbox-{}", self.portal))
            .json(&json!({
                "inputs": inputs,
                "properties": ["lifecyclestage", "lastmodifieddate", "custom_impact_click_id"],
            }))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let results = read["results"].as_array().cloned().unwrap_or_default();
        let posts = results.iter().map(|o| self.post(o));
        let sent: Vec<(String, String, Option<String>)> = futures::future::try_join_all(posts)
            .await?
            .into_iter()
            .collect();
        let portals = vec![self.portal as i64; sent.len()];
        let (orders, payloads, uris): (Vec<_>, Vec<_>, Vec<_>) = sent.into_iter().fold(
            (Vec::new(), Vec::new(), Vec::new()),
            |mut acc, (o, p, u)| {
                acc.0.push(o);
                acc.1.push(p);
                acc.2.push(u);
                acc
            },
        );
        let n = orders.len() as u64;
        sqlx::query(
            "INSERT INTO floor_conversions (portal_id, order_id, payload, queued_uri)
             SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[])
             ON CONFLICT DO NOTHING",
        )
        .bind(portals)
        .bind(orders)
        .bind(payloads)
        .bind(uris)
        .execute(&self.pool)
        .await?;
        Ok(n)
    }

    /// Posts `object`'s conversion: `(OrderId, form, QueuedUri)`.
    async fn post(&self, object: &Value) -> anyhow::Result<(String, String, Option<String>)> {
        let id = object["id"].as_str().unwrap_or_default().to_owned();
        let prop = |name: &str| {
            object["properties"][name]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        };
        let stage = prop("lifecyclestage");
        let date = prop("lastmodifieddate");
        let click = prop("custom_impact_click_id");
        let mut form = vec![
            ("CampaignId", "1000".to_owned()),
            (
                "EventTypeCode",
                if stage.is_empty() {
                    "lead".into()
                } else {
                    stage
                },
            ),
            ("CustomerId", id.clone()),
            ("OrderId", id.clone()),
            (
                "EventDate",
                if date.is_empty() { "NOW".into() } else { date },
            ),
        ];
        if !click.is_empty() {
            form.push(("ClickId", click));
        }
        let encoded = serde_urlencoded::to_string(&form)?;
        let _permit = self.posts.acquire().await?;
        let answer: Value = self
            .http
            .post(format!(
                "{}/Advertisers/IRsandbox/Conversions",
                self.impact_url
            ))
            .basic_auth("IRsandbox", Some("sandbox-token"))
            .header(reqwest::header::ACCEPT, "application/json")
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(encoded.clone())
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let uri = answer["QueuedUri"].as_str().map(str::to_owned);
        Ok((id, encoded, uri))
    }
}
