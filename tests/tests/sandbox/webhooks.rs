//! The fake HubSpot's webhook deliveries: event shape, v1 and v3 signatures
//! (checked here with an independent computation), batches of at most 100,
//! at most 10 in flight per portal, retries, duplicates and disorder.

// In tests a panic is the failure report.
#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sandbox::{DeliveryOptions, ObjectType, PortalSeed, Sandbox, SandboxConfig, WebhookTarget};
use serde_json::Value;
use sha2::{Digest, Sha256};

const SECRET: &str = "test-client-secret";
const PORTAL: u64 = 1001;

#[derive(Clone, Default)]
struct Receiver {
    requests: Arc<Mutex<Vec<(HeaderMap, Bytes)>>>,
    /// Statuses to answer, in order; 200 once used up.
    script: Arc<Mutex<Vec<u16>>>,
    delay: Arc<Mutex<Duration>>,
    /// Delays for the next requests, in order, before `delay` applies.
    delay_script: Arc<Mutex<Vec<Duration>>>,
    in_flight: Arc<AtomicUsize>,
    max_in_flight: Arc<AtomicUsize>,
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let now = r.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    r.max_in_flight.fetch_max(now, Ordering::SeqCst);
    let delay = {
        let mut script = r.delay_script.lock().unwrap();
        if script.is_empty() {
            *r.delay.lock().unwrap()
        } else {
            script.remove(0)
        }
    };
    tokio::time::sleep(delay).await;
    r.requests.lock().unwrap().push((headers, body));
    let status = {
        let mut script = r.script.lock().unwrap();
        if script.is_empty() {
            200
        } else {
            script.remove(0)
        }
    };
    r.in_flight.fetch_sub(1, Ordering::SeqCst);
    StatusCode::from_u16(status).unwrap()
}

/// Starts a receiver; returns it and its webhook URL (with a query string, to
/// check that the URL is signed exactly as configured).
async fn receiver() -> (Receiver, String) {
    let r = Receiver::default();
    let app = axum::Router::new()
        .route("/webhooks/hubspot", axum::routing::post(receive))
        .with_state(r.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/webhooks/hubspot?app=sandbox",
        listener.local_addr().unwrap()
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    (r, url)
}

async fn sandbox(url: &str) -> Sandbox {
    let cfg = SandboxConfig {
        portals: vec![PortalSeed::sized(PORTAL, 5)],
        webhook: Some(WebhookTarget::new(url, SECRET)),
        webhook_retry_delays: vec![Duration::from_millis(20); 3],
        ..Default::default()
    };
    Sandbox::start(cfg).await.unwrap()
}

fn bodies(r: &Receiver) -> Vec<Vec<Value>> {
    r.requests
        .lock()
        .unwrap()
        .iter()
        .map(|(_, b)| serde_json::from_slice(b).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn property_change_is_delivered_signed_v1_and_v3() {
    let (r, url) = receiver().await;
    let sb = sandbox(&url).await;
    let deal = sb.hubspot().objects(PORTAL, ObjectType::Deals)[0].id;
    sb.hubspot()
        .set_property(PORTAL, ObjectType::Deals, deal, "dealstage", "closedwon")
        .unwrap();
    sb.hubspot().wait_idle().await;

    let requests = r.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 1);
    let (headers, body) = &requests[0];
    let h = |n: &str| headers[n].to_str().unwrap().to_string();
    assert_eq!(h("content-type"), "application/json");

    let v1 = hex::encode(Sha256::digest([SECRET.as_bytes(), body].concat()));
    assert_eq!(h("x-hubspot-signature"), v1);
    assert_eq!(h("x-hubspot-signature-version"), "v1");
    let ts = h("x-hubspot-request-timestamp");
    let ms: i64 = ts.parse().unwrap();
    assert!(
        (chrono::Utc::now().timestamp_millis() - ms).abs() < 60_000,
        "timestamp in milliseconds"
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("POST{url}").as_bytes());
    mac.update(body);
    mac.update(ts.as_bytes());
    let v3 = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    assert_eq!(h("x-hubspot-signature-v3"), v3);

    // The ingest code path accepts it too: v3 preferred, v1 when alone.
    let mut verifier = domain::signature::Verifier::new(SECRET, 300);
    verifier.accept_v1 = true;
    let (v1h, v3h, version) = (
        h("x-hubspot-signature"),
        h("x-hubspot-signature-v3"),
        h("x-hubspot-signature-version"),
    );
    let mut req = domain::signature::SignedRequest {
        method: "POST",
        uri: &url,
        body,
        signature: Some(&v1h),
        signature_version: Some(&version),
        signature_v3: Some(&v3h),
        timestamp: Some(&ts),
    };
    let now = chrono::Utc::now().timestamp_millis() as u64;
    assert_eq!(
        verifier.verify(&req, now).unwrap(),
        domain::signature::SignatureVersion::V3
    );
    req.signature_v3 = None;
    req.timestamp = None;
    assert_eq!(
        verifier.verify(&req, now).unwrap(),
        domain::signature::SignatureVersion::V1
    );

    let events: Vec<Value> = serde_json::from_slice(body).unwrap();
    assert_eq!(events.len(), 1);
    let e = &events[0];
    for field in [
        "eventId",
        "subscriptionId",
        "portalId",
        "appId",
        "occurredAt",
        "objectId",
    ] {
        assert!(e[field].is_u64(), "{field} is a number");
    }
    assert_eq!(e["portalId"], PORTAL);
    assert_eq!(e["objectId"], deal);
    assert_eq!(e["subscriptionType"], "deal.propertyChange");
    assert_eq!(e["propertyName"], "dealstage");
    assert_eq!(e["propertyValue"], "closedwon");
    assert_eq!(e["attemptNumber"], 0);
    assert_eq!(e["changeSource"], "CRM");
    assert!(e.get("changeFlag").is_none());
    assert_eq!(sb.hubspot().delivered_events().len(), 1);
    assert_eq!(
        sb.hubspot()
            .object(PORTAL, ObjectType::Deals, deal)
            .unwrap()
            .properties["hs_deal_stage_probability"],
        "1.0"
    );

    // Once the app is uninstalled, the portal's changes are not sent.
    sb.hubspot().uninstall(PORTAL).unwrap();
    sb.hubspot()
        .set_property(PORTAL, ObjectType::Deals, deal, "dealstage", "closedlost")
        .unwrap();
    sb.hubspot().wait_idle().await;
    assert_eq!(r.requests.lock().unwrap().len(), 1);
    assert_eq!(sb.hubspot().webhook_stats().undeliverable, 1);
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn import_arrives_in_batches_of_100_with_at_most_10_in_flight() {
    let (r, url) = receiver().await;
    *r.delay.lock().unwrap() = Duration::from_millis(50);
    let sb = sandbox(&url).await;
    let ids = sb.hubspot().import_contacts(PORTAL, 2_050).unwrap();
    sb.hubspot().wait_idle().await;
    let batches = bodies(&r);
    assert_eq!(batches.len(), 21);
    assert!(batches.iter().all(|b| b.len() <= 100));
    let events: Vec<&Value> = batches.iter().flatten().collect();
    assert_eq!(events.len(), 2_050);
    assert!(
        events
            .iter()
            .all(|e| e["subscriptionType"] == "contact.creation"
                && e["changeFlag"] == "NEW"
                && e["changeSource"] == "IMPORT")
    );
    let mut seen: Vec<u64> = events
        .iter()
        .map(|e| e["objectId"].as_u64().unwrap())
        .collect();
    seen.sort_unstable();
    assert_eq!(seen, ids);
    let max = r.max_in_flight.load(Ordering::SeqCst);
    assert!((2..=10).contains(&max), "max in flight {max}");
    assert_eq!(sb.hubspot().webhook_stats().max_in_flight_seen, max);
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn failures_and_timeouts_are_retried_with_attempt_numbers() {
    let (r, url) = receiver().await;
    *r.script.lock().unwrap() = vec![503, 500];
    let sb = sandbox(&url).await;
    let id = sb
        .hubspot()
        .create_contact(PORTAL, [("email", "x@example.com")])
        .unwrap();
    sb.hubspot().wait_idle().await;
    let attempts: Vec<u64> = bodies(&r)
        .iter()
        .map(|b| b[0]["attemptNumber"].as_u64().unwrap())
        .collect();
    assert_eq!(attempts, [0, 1, 2]);
    let delivered = sb.hubspot().delivered_events();
    assert_eq!(
        (
            delivered.len(),
            delivered[0].object_id,
            delivered[0].attempt_number
        ),
        (1, id, 2)
    );
    assert_eq!(delivered[0].change_flag.as_deref(), Some("NEW"));
    assert_eq!(sb.hubspot().webhook_stats().failed_attempts, 2);

    // A slow answer counts as a failure.
    sb.hubspot()
        .set_webhook_timing(Duration::from_millis(200), vec![Duration::from_millis(10)]);
    *r.delay_script.lock().unwrap() = vec![Duration::from_secs(1)];
    sb.hubspot()
        .set_property(
            PORTAL,
            ObjectType::Contacts,
            id,
            "lifecyclestage",
            "customer",
        )
        .unwrap();
    sb.hubspot().wait_idle().await;
    let last = sb.hubspot().delivered_events().pop().unwrap();
    assert_eq!(
        (last.property_name.as_deref(), last.attempt_number),
        (Some("lifecyclestage"), 1)
    );

    // Out of retries: given up and counted.
    *r.script.lock().unwrap() = vec![500, 500];
    sb.hubspot()
        .delete_object(PORTAL, ObjectType::Contacts, id)
        .unwrap();
    sb.hubspot().wait_idle().await;
    let failed = sb.hubspot().failed_events();
    assert_eq!(
        (failed.len(), failed[0].subscription_type.as_str()),
        (1, "contact.deletion")
    );
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn duplicates_and_out_of_order_on_request() {
    let (r, url) = receiver().await;
    let sb = sandbox(&url).await;
    let hs = sb.hubspot();
    hs.set_delivery_options(DeliveryOptions {
        duplicate_share: 1.0,
        out_of_order: true,
    });
    let deals = hs
        .deal_stage_stream(PORTAL, 10, &["qualifiedtobuy", "contractsent", "closedwon"])
        .unwrap();
    hs.wait_idle().await;
    let emitted = hs.emitted_events();
    // 10 contacts + 10 deals created, 30 stage changes.
    assert_eq!(emitted.len(), 50);
    let delivered: Vec<Value> = bodies(&r).into_iter().flatten().collect();
    assert_eq!(delivered.len(), 100, "every event twice");
    let changes: Vec<&Value> = delivered
        .iter()
        .filter(|e| e["subscriptionType"] == "deal.propertyChange")
        .collect();
    assert_eq!(changes.len(), 60);
    assert!(
        changes
            .iter()
            .all(|e| deals.contains(&e["objectId"].as_u64().unwrap())
                && e["propertyName"] == "dealstage")
    );
    let times: Vec<i64> = changes
        .iter()
        .map(|e| e["occurredAt"].as_i64().unwrap())
        .collect();
    assert!(
        times.windows(2).any(|w| w[0] > w[1]),
        "delivered out of order"
    );
    let final_stage = &hs
        .object(PORTAL, ObjectType::Deals, deals[0])
        .unwrap()
        .properties["dealstage"];
    assert_eq!(final_stage, "closedwon");

    // An exact redelivery on request.
    hs.set_delivery_options(DeliveryOptions::default());
    let before = r.requests.lock().unwrap().len();
    hs.redeliver(vec![emitted[0].clone()]);
    hs.wait_idle().await;
    let again = bodies(&r)[before].clone();
    assert_eq!(again[0]["eventId"], emitted[0].event_id);
    assert_eq!(again[0]["occurredAt"], emitted[0].occurred_at);
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn control_api_sets_the_target_changes_data_and_runs_scenarios() {
    let (r, url) = receiver().await;
    let sb = Sandbox::start(SandboxConfig {
        portals: vec![PortalSeed::sized(PORTAL, 2)],
        ..Default::default()
    })
    .await
    .unwrap();
    let base = sb.hubspot_url();
    let client = reqwest::Client::new();
    let target = serde_json::json!({"url": url, "client_secret": SECRET});
    let resp = client
        .put(format!("{base}/_sandbox/webhook"))
        .json(&target)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);

    let created: Value = client
        .post(format!("{base}/_sandbox/portals/{PORTAL}/objects/contacts"))
        .json(
            &serde_json::json!({"properties": {"email": "c@example.com", "hs_lead_status": "NEW"}}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap().to_string();
    let resp = client
        .patch(format!(
            "{base}/_sandbox/portals/{PORTAL}/objects/contacts/{id}"
        ))
        .json(&serde_json::json!({"properties": {"hs_lead_status": "CONNECTED"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = client
        .post(format!(
            "{base}/_sandbox/portals/{PORTAL}/scenarios/import-contacts"
        ))
        .json(&serde_json::json!({"count": 150}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    sb.hubspot().wait_idle().await;

    let events: Vec<Value> = bodies(&r).into_iter().flatten().collect();
    assert_eq!(events.len(), 152);
    let id: u64 = id.parse().unwrap();
    let mine: Vec<&Value> = events.iter().filter(|e| e["objectId"] == id).collect();
    assert_eq!(mine.len(), 2);
    assert!(mine.iter().all(|e| e["appId"] == 4_242_424));
    let change = mine
        .iter()
        .find(|e| e["subscriptionType"] == "contact.propertyChange")
        .unwrap();
    assert_eq!(change["propertyName"], "hs_lead_status");
    assert_eq!(change["propertyValue"], "CONNECTED");
    assert!(
        mine.iter()
            .any(|e| e["subscriptionType"] == "contact.creation")
    );
    let summary: Value = client
        .get(format!("{base}/_sandbox"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(summary["webhook_stats"]["delivered_events"], 152);
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn association_changes_are_sent_both_ways_in_one_delivery_without_object_id() {
    let (r, url) = receiver().await;
    let sb = sandbox(&url).await;
    let contact = sb.hubspot().objects(PORTAL, ObjectType::Contacts)[0].id;
    let company = sb.hubspot().objects(PORTAL, ObjectType::Companies)[0].id;
    sb.hubspot()
        .associate_notifying(
            PORTAL,
            (ObjectType::Contacts, contact),
            (ObjectType::Companies, company),
        )
        .unwrap();
    sb.hubspot().wait_idle().await;
    let bodies = bodies(&r);
    assert_eq!(bodies.len(), 1, "one delivery: {bodies:?}");
    let events = &bodies[0];
    assert_eq!(events.len(), 2);
    let pairs: Vec<(&str, &str, u64, u64)> = events
        .iter()
        .map(|e| {
            assert!(e.get("objectId").is_none(), "no objectId: {e}");
            assert_eq!(e["associationRemoved"], false);
            assert_eq!(e["isPrimaryAssociation"], false);
            assert_eq!(e["portalId"], PORTAL);
            (
                e["subscriptionType"].as_str().unwrap(),
                e["associationType"].as_str().unwrap(),
                e["fromObjectId"].as_u64().unwrap(),
                e["toObjectId"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        pairs,
        [
            (
                "contact.associationChange",
                "CONTACT_TO_COMPANY",
                contact,
                company
            ),
            (
                "company.associationChange",
                "COMPANY_TO_CONTACT",
                company,
                contact
            ),
        ]
    );
    assert!(
        sb.hubspot()
            .associated(PORTAL, ObjectType::Contacts, contact, ObjectType::Companies)
            .contains(&company),
        "linked"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_private_apps_portal_is_signed_with_that_apps_secret() {
    let (r, url) = receiver().await;
    let cfg = SandboxConfig {
        portals: vec![PortalSeed::sized(PORTAL, 1), PortalSeed::sized(1002, 1)],
        webhook: Some(WebhookTarget::new(&url, SECRET).with_portal_secret(1002, "private-secret")),
        ..Default::default()
    };
    let sb = Sandbox::start(cfg).await.unwrap();
    sb.hubspot()
        .create_contact(PORTAL, [("email", "a@x.test")])
        .unwrap();
    sb.hubspot()
        .create_contact(1002, [("email", "b@x.test")])
        .unwrap();
    sb.hubspot().wait_idle().await;
    let requests = r.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 2);
    for (headers, body) in &requests {
        let events: Vec<Value> = serde_json::from_slice(body).unwrap();
        let secret = if events[0]["portalId"] == 1002 {
            "private-secret"
        } else {
            SECRET
        };
        let v1 = hex::encode(Sha256::digest([secret.as_bytes(), body].concat()));
        assert_eq!(headers["x-hubspot-signature"].to_str().unwrap(), v1);
    }
}
