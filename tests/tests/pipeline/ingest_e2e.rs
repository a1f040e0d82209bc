//! Ingest against the real RabbitMQ: what is accepted arrives intact, what is
//! refused enqueues nothing, and a broker outage answers 503 then recovers.

use std::time::Duration;

use crate::support::harness::*;
use lapin::types::AMQPValue;
use serde_json::Value;
use shared::broker::{EVENT_COUNT_HEADER, PORTAL_HEADER};

async fn work_queue_setup() -> anyhow::Result<(
    shared::config::Settings,
    IngestHandle,
    lapin::Connection,
    lapin::Channel,
)> {
    let settings = test_settings();
    let ingest = spawn_ingest(settings.clone()).await?;
    let (conn, ch) = broker_channel().await?;
    // Wait until ingest has declared the topology.
    let client = reqwest::Client::new();
    for _ in 0..100 {
        if client
            .get(format!("{}/readyz", ingest.base_url()))
            .send()
            .await?
            .status()
            == 200
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok((settings, ingest, conn, ch))
}

fn work_queue(settings: &shared::config::Settings) -> String {
    format!("{}hubspot.events.work", settings.queue_prefix)
}

#[tokio::test]
async fn a_signed_batch_comes_out_of_the_queue_intact() -> anyhow::Result<()> {
    let (settings, ingest, _conn, ch) = work_queue_setup().await?;
    let client = reqwest::Client::new();
    // Unknown subscription types and unknown fields are kept as sent.
    let mut events: Vec<Value> = serde_json::from_slice(&event_batch(62515, 1, 99))?;
    events.push(
        serde_json::json!({"eventId": 100, "portalId": 62515, "objectId": 7, "occurredAt": 1,
        "subscriptionType": "ticket.somethingNew", "weird": {"nested": [1, 2.50]}}),
    );
    let body = serde_json::to_vec(&events)?;
    let resp = signed_request(&client, &ingest.webhook_url(), TEST_SECRET, body.clone())
        .send()
        .await?;
    assert_eq!(resp.status(), 200);
    let answer: Value = resp.json().await?;
    assert_eq!(answer["events"], 100);

    let msg = get_one(&ch, &work_queue(&settings))
        .await?
        .expect("one message");
    assert_eq!(
        msg.delivery.data, body,
        "the body is the events byte for byte"
    );
    let headers = msg.delivery.properties.headers().clone().expect("headers");
    assert_eq!(
        headers.inner().get(PORTAL_HEADER),
        Some(&AMQPValue::LongLongInt(62515))
    );
    assert_eq!(
        headers.inner().get(EVENT_COUNT_HEADER),
        Some(&AMQPValue::LongLongInt(100))
    );
    assert_eq!(
        msg.delivery.properties.delivery_mode(),
        &Some(2),
        "persistent"
    );
    let decoded = domain::events::decode_message(&msg.delivery.data)?;
    assert_eq!(decoded.len(), 100);
    assert_eq!(decoded[99].extra["weird"]["nested"][1], 2.5);
    assert_eq!(queue_len(&ch, &work_queue(&settings)).await?, 0);

    ingest.stop().await?;
    delete_topology(&ch, &settings).await
}

#[tokio::test]
async fn refused_requests_enqueue_nothing() -> anyhow::Result<()> {
    let (settings, ingest, _conn, ch) = work_queue_setup().await?;
    let client = reqwest::Client::new();
    let url = ingest.webhook_url();
    let good = event_batch(1, 1, 3);
    let stale_ts = (now_ms() - 301_000).to_string();
    let future_ts = (now_ms() + 301_000).to_string();
    let sig = |body: &[u8], ts: &str| {
        domain::signature::sign_v3(TEST_SECRET.as_bytes(), "POST", &url, body, ts)
    };

    let cases: Vec<(reqwest::RequestBuilder, u16, &str)> = vec![
        (
            client.post(&url).body(good.clone()),
            401,
            "missing signature",
        ),
        (
            signed_request(&client, &url, "wrong-secret", good.clone()),
            401,
            "invalid v3 signature",
        ),
        (
            client
                .post(&url)
                .header("X-HubSpot-Signature-v3", sig(&good, &stale_ts))
                .header("X-HubSpot-Request-Timestamp", &stale_ts)
                .body(good.clone()),
            401,
            "stale request",
        ),
        (
            client
                .post(&url)
                .header("X-HubSpot-Signature-v3", sig(&good, &future_ts))
                .header("X-HubSpot-Request-Timestamp", &future_ts)
                .body(good.clone()),
            401,
            "in the future",
        ),
        (
            signed_request(&client, &url, TEST_SECRET, b"not json".to_vec()),
            400,
            "not valid JSON",
        ),
        (
            signed_request(&client, &url, TEST_SECRET, b"{\"portalId\":1}".to_vec()),
            400,
            "JSON array",
        ),
        (
            signed_request(&client, &url, TEST_SECRET, b"[]".to_vec()),
            400,
            "empty array",
        ),
        (
            signed_request(
                &client,
                &url,
                TEST_SECRET,
                br#"[{"portalId":1,"objectId":2,"occurredAt":3,"subscriptionType":"a.b"},7]"#
                    .to_vec(),
            ),
            400,
            "event 1: must be a JSON object",
        ),
        (
            signed_request(&client, &url, TEST_SECRET, event_batch(1, 1, 101)),
            400,
            "too many events",
        ),
        (
            signed_request(&client, &url, TEST_SECRET, vec![b' '; 1024 * 1024 + 1]),
            413,
            "exceeds",
        ),
    ];
    for (req, status, message) in cases {
        let resp = req.send().await?;
        assert_eq!(resp.status().as_u16(), status, "{message}");
        let body: Value = resp.json().await?;
        let text = body["message"].as_str().unwrap_or_default();
        assert!(text.contains(message), "{message}: {body}");
        let code = match message {
            "missing signature" => "missing_signature",
            "invalid v3 signature" => "invalid_signature",
            "stale request" => "stale_timestamp",
            "in the future" => "future_timestamp",
            "exceeds" => "body_too_large",
            _ => "invalid_payload",
        };
        assert_eq!(body["error"], code, "{message}");
    }
    // v1 is refused unless enabled.
    let v1 = domain::signature::sign_v1(TEST_SECRET.as_bytes(), &good);
    let resp = client
        .post(&url)
        .header("X-HubSpot-Signature", v1)
        .header("X-HubSpot-Signature-Version", "v1")
        .body(good.clone())
        .send()
        .await?;
    assert_eq!(resp.status(), 401);
    assert_eq!(
        queue_len(&ch, &work_queue(&settings)).await?,
        0,
        "nothing was enqueued"
    );

    ingest.stop().await?;
    delete_topology(&ch, &settings).await
}

#[tokio::test]
async fn odd_events_are_set_aside_and_the_rest_enqueued() -> anyhow::Result<()> {
    let (settings, ingest, _conn, ch) = work_queue_setup().await?;
    let client = reqwest::Client::new();
    let valid =
        r#"{"portalId":7,"objectId":2,"occurredAt":3,"subscriptionType":"contact.creation"}"#;
    let no_kind = r#"{"portalId":7,"objectId":2,"occurredAt":3}"#;
    let association = r#"{"portalId":7,"occurredAt":3,"subscriptionType":"deal.associationChange","associationType":"DEAL_TO_LINE_ITEM","fromObjectId":1,"toObjectId":2,"associationRemoved":false,"isPrimaryAssociation":false}"#;
    let unknown = r#"{"portalId":"x","objectId":2,"occurredAt":3,"subscriptionType":"a.b"}"#;
    let body = format!("[{no_kind},{valid},{association},{unknown}]");
    let resp = signed_request(
        &client,
        &ingest.webhook_url(),
        TEST_SECRET,
        body.into_bytes(),
    )
    .send()
    .await?;
    assert_eq!(resp.status(), 200);
    let answer: Value = resp.json().await?;
    assert_eq!(
        (&answer["events"], &answer["invalid"], &answer["ignored"]),
        (
            &serde_json::json!(1),
            &serde_json::json!(1),
            &serde_json::json!(2)
        ),
        "{answer}"
    );
    // The readable event, byte for byte, for the worker.
    let msg = get_one(&ch, &work_queue(&settings))
        .await?
        .expect("enqueued");
    assert_eq!(msg.delivery.data, format!("[{valid}]").as_bytes());
    assert_eq!(queue_len(&ch, &work_queue(&settings)).await?, 0);
    // The unreadable one, as sent, for the dead-letter sink (class invalid).
    let dead = format!("{}hubspot.dead", settings.queue_prefix);
    let msg = get_one(&ch, &dead).await?.expect("dead-lettered");
    assert_eq!(msg.delivery.data, format!("[{no_kind}]").as_bytes());
    let envelope = shared::broker::Envelope::read(msg.delivery.properties.headers().as_ref());
    assert_eq!(envelope.portal, Some(7));
    assert_eq!(
        envelope.invalid.as_deref(),
        Some("missing field `subscriptionType`")
    );
    assert_eq!(
        queue_len(&ch, &dead).await?,
        0,
        "the ignored ones go nowhere"
    );
    ingest.stop().await?;
    delete_topology(&ch, &settings).await
}

#[tokio::test]
async fn v1_is_accepted_when_enabled() -> anyhow::Result<()> {
    let mut settings = test_settings();
    settings.accept_signature_v1 = true;
    let ingest = spawn_ingest(settings.clone()).await?;
    let (_conn, ch) = broker_channel().await?;
    let client = reqwest::Client::new();
    let body = event_batch(5, 1, 2);
    let v1 = domain::signature::sign_v1(TEST_SECRET.as_bytes(), &body);
    let resp = client
        .post(ingest.webhook_url())
        .header("X-HubSpot-Signature", v1)
        .header("X-HubSpot-Signature-Version", "v1")
        .body(body.clone())
        .send()
        .await?;
    assert_eq!(resp.status(), 200);
    let msg = get_one(&ch, &work_queue(&settings))
        .await?
        .expect("enqueued");
    assert_eq!(msg.delivery.data, body);
    ingest.stop().await?;
    delete_topology(&ch, &settings).await
}

#[tokio::test]
async fn public_url_is_what_the_signature_covers() -> anyhow::Result<()> {
    let mut settings = test_settings();
    settings.public_url = Some("https://hooks.example.com/".into());
    let ingest = spawn_ingest(settings.clone()).await?;
    let (_conn, ch) = broker_channel().await?;
    let client = reqwest::Client::new();
    let body = event_batch(5, 1, 1);
    let ts = now_ms().to_string();
    // HubSpot called the public URL; the query's escapes are decoded per its table.
    let signed_uri = "https://hooks.example.com/webhooks/hubspot?tag=a@b";
    let v3 = domain::signature::sign_v3(TEST_SECRET.as_bytes(), "POST", signed_uri, &body, &ts);
    let resp = client
        .post(format!("{}?tag=a%40b", ingest.webhook_url()))
        .header("X-HubSpot-Signature-v3", &v3)
        .header("X-HubSpot-Request-Timestamp", &ts)
        .body(body.clone())
        .send()
        .await?;
    assert_eq!(resp.status(), 200);
    // Signed for the socket address instead: refused.
    let resp = signed_request(&client, &ingest.webhook_url(), TEST_SECRET, body)
        .send()
        .await?;
    assert_eq!(resp.status(), 401);
    assert_eq!(queue_len(&ch, &work_queue(&settings)).await?, 1);
    ingest.stop().await?;
    delete_topology(&ch, &settings).await
}

/// Ingest whose broker connection goes through a proxy the test controls.
async fn behind_proxy() -> anyhow::Result<(
    TcpProxy,
    shared::config::Settings,
    IngestHandle,
    lapin::Connection,
    lapin::Channel,
)> {
    let proxy = TcpProxy::start("127.0.0.1:5672".parse()?).await?;
    let mut settings = test_settings();
    settings.amqp_url = proxy.amqp_url();
    settings.publish_timeout_ms = 1000;
    let ingest = spawn_ingest(settings.clone()).await?;
    let (conn, ch) = broker_channel().await?;
    Ok((proxy, settings, ingest, conn, ch))
}

#[tokio::test]
async fn broker_outage_answers_503_then_recovers_without_restart() -> anyhow::Result<()> {
    let (proxy, settings, ingest, _conn, ch) = behind_proxy().await?;
    let client = reqwest::Client::new();
    let url = ingest.webhook_url();
    let readyz = format!("{}/readyz", ingest.base_url());

    let resp = signed_request(&client, &url, TEST_SECRET, event_batch(9, 1, 10))
        .send()
        .await?;
    assert_eq!(resp.status(), 200);

    proxy.cut();
    let started = std::time::Instant::now();
    let resp = signed_request(&client, &url, TEST_SECRET, event_batch(9, 100, 10))
        .send()
        .await?;
    assert_eq!(resp.status(), 503);
    assert!(started.elapsed() < Duration::from_secs(5), "bounded wait");
    let body: Value = resp.json().await?;
    assert_eq!(body["error"], "broker_unavailable");
    let mut ready = 200;
    for _ in 0..40 {
        ready = client.get(&readyz).send().await?.status().as_u16();
        if ready == 503 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(ready, 503, "readiness reports the outage");

    proxy.restore();
    let mut status = 0;
    for _ in 0..50 {
        status = signed_request(&client, &url, TEST_SECRET, event_batch(9, 200, 10))
            .send()
            .await?
            .status()
            .as_u16();
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(status, 200, "accepts again once the broker is back");
    assert_eq!(client.get(&readyz).send().await?.status(), 200);
    // Exactly the accepted requests are queued: the first and the last.
    let mut ids = Vec::new();
    while let Some(m) = get_one(&ch, &work_queue(&settings)).await? {
        ids.extend(
            domain::events::decode_message(&m.delivery.data)?
                .iter()
                .map(|e| e.object_id),
        );
    }
    assert_eq!(ids.first(), Some(&1));
    assert!(
        !ids.contains(&100),
        "the refused request left nothing behind"
    );
    assert_eq!(ids.last(), Some(&209));
    ingest.stop().await?;
    delete_topology(&ch, &settings).await
}

#[tokio::test]
async fn a_hung_broker_answers_503_in_bounded_time_then_recovers() -> anyhow::Result<()> {
    let (proxy, settings, ingest, _conn, ch) = behind_proxy().await?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let url = ingest.webhook_url();
    let resp = signed_request(&client, &url, TEST_SECRET, event_batch(9, 1, 10))
        .send()
        .await?;
    assert_eq!(resp.status(), 200);

    // The broker stops answering but keeps the connection open (and new
    // connections hang): every request still gets its 503 within the bound.
    proxy.stall();
    for i in 0..3 {
        let started = std::time::Instant::now();
        let resp = signed_request(&client, &url, TEST_SECRET, event_batch(9, 100 + i * 10, 10))
            .send()
            .await?;
        assert_eq!(resp.status(), 503, "request {i}");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "request {i} took {:?}",
            started.elapsed()
        );
    }
    // Once it answers again, ingest recovers by itself.
    proxy.restore();
    let mut status = 0;
    for _ in 0..60 {
        let started = std::time::Instant::now();
        status = signed_request(&client, &url, TEST_SECRET, event_batch(9, 500, 10))
            .send()
            .await?
            .status()
            .as_u16();
        assert!(started.elapsed() < Duration::from_secs(3));
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(status, 200, "recovered after the stall");
    ingest.stop().await?;
    delete_topology(&ch, &settings).await
}

#[tokio::test]
async fn health_and_metrics() -> anyhow::Result<()> {
    let (settings, ingest, _conn, ch) = work_queue_setup().await?;
    let client = reqwest::Client::new();
    assert_eq!(
        client
            .get(format!("{}/healthz", ingest.base_url()))
            .send()
            .await?
            .status(),
        200
    );
    signed_request(
        &client,
        &ingest.webhook_url(),
        TEST_SECRET,
        event_batch(3, 1, 4),
    )
    .send()
    .await?;
    client.post(ingest.webhook_url()).body("[]").send().await?;
    let text = client
        .get(format!("{}/metrics", ingest.base_url()))
        .send()
        .await?
        .text()
        .await?;
    assert!(
        text.contains("ingest_requests_total{outcome=\"accepted\"}"),
        "{text}"
    );
    assert!(
        text.contains("ingest_requests_total{outcome=\"invalid_signature\"}"),
        "{text}"
    );
    assert!(text.contains("ingest_events_accepted_total"), "{text}");
    assert!(
        text.contains("ingest_publish_duration_seconds_bucket"),
        "{text}"
    );
    ingest.stop().await?;
    delete_topology(&ch, &settings).await
}

#[tokio::test]
async fn shutdown_finishes_in_flight_requests() -> anyhow::Result<()> {
    let (settings, ingest, _conn, ch) = work_queue_setup().await?;
    let client = reqwest::Client::new();
    let url = ingest.webhook_url();
    let requests: Vec<_> = (0..20)
        .map(|i| {
            tokio::spawn(
                signed_request(&client, &url, TEST_SECRET, event_batch(4, i * 100, 100)).send(),
            )
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(5)).await;
    ingest.shutdown.cancel();
    let mut accepted = 0;
    for r in requests {
        // A request either completed (200, enqueued) or was never accepted
        // (connection refused): never a 2xx without the message.
        if let Ok(Ok(resp)) = r.await
            && resp.status() == 200
        {
            accepted += 1;
        }
    }
    ingest.task.await??;
    let queued = queue_len(&ch, &work_queue(&settings)).await?;
    assert_eq!(queued, accepted, "every 200 has its message");
    delete_topology(&ch, &settings).await
}
