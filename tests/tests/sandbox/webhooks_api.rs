//! The fake HubSpot's Webhooks API (v3) held to HubSpot's reference: the
//! developer API key as `hapikey`, 404 for another app, the answers'
//! shapes (string ids, `results`, `throttling`), validation errors, and
//! deliveries limited to what the app subscribed to (only the subscribed
//! property of a `propertyChange`, nothing from a paused subscription).

// In tests a panic is the failure report.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use reqwest::StatusCode;
use sandbox::{ObjectType, PortalSeed, Sandbox, SandboxConfig, SubscriptionMode, props};
use serde_json::{Value, json};

const PORTAL: u64 = 1001;
const APP: u64 = 4_242_424;
const KEY: &str = "sandbox-developer-key";

type Received = Arc<Mutex<Vec<Value>>>;

async fn receive(State(r): State<Received>, body: Bytes) -> &'static str {
    let events: Vec<Value> = serde_json::from_slice(&body).unwrap();
    r.lock().unwrap().extend(events);
    "ok"
}

/// A webhook receiver answering 200; returns what it got and its URL.
async fn receiver() -> (Received, String) {
    let r = Received::default();
    let app = axum::Router::new()
        .route("/webhooks/hubspot", axum::routing::post(receive))
        .with_state(r.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/webhooks/hubspot", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (r, url)
}

/// A sandbox that delivers only what the app subscribed to, with no target yet.
async fn strict() -> Sandbox {
    Sandbox::start(SandboxConfig {
        portals: vec![PortalSeed::sized(PORTAL, 3)],
        webhook_subscriptions: SubscriptionMode::AsSubscribed,
        ..SandboxConfig::default()
    })
    .await
    .unwrap()
}

struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    fn new(sb: &Sandbox) -> Api {
        Api {
            http: reqwest::Client::new(),
            base: sb.hubspot_url(),
        }
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let url = format!("{}/webhooks/v3/{APP}/{path}?hapikey={KEY}", self.base);
        let mut req = self.http.request(method, url);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_developer_key_and_the_app_id_are_checked() {
    let sb = strict().await;
    let http = reqwest::Client::new();
    let base = sb.hubspot_url();
    for (url, status) in [
        (format!("{base}/webhooks/v3/{APP}/subscriptions"), 401),
        (
            format!("{base}/webhooks/v3/{APP}/subscriptions?hapikey=wrong"),
            401,
        ),
        (
            format!("{base}/webhooks/v3/999/subscriptions?hapikey={KEY}"),
            404,
        ),
        (
            format!("{base}/webhooks/v3/{APP}/subscriptions?hapikey={KEY}"),
            200,
        ),
    ] {
        let resp = http.get(&url).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), status, "{url}");
        let body: Value = resp.json().await.unwrap();
        if status != 200 {
            assert_eq!(body["status"], "error");
            assert!(body["message"].is_string() && body["correlationId"].is_string());
        } else {
            assert_eq!(body, json!({"results": []}));
        }
    }
    // A bearer token (a portal's) does not manage the app.
    let resp = http
        .get(format!("{base}/webhooks/v3/{APP}/settings"))
        .bearer_auth("pat-sandbox-1001")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn subscriptions_and_settings_have_hubspot_s_shapes_and_validation() {
    let sb = strict().await;
    let api = Api::new(&sb);
    use reqwest::Method;

    let (s, v) = api.send(Method::GET, "settings", None).await;
    assert_eq!(
        (s, &v["category"]),
        (StatusCode::NOT_FOUND, &json!("OBJECT_NOT_FOUND"))
    );
    let (s, v) = api
        .send(
            Method::PUT,
            "settings",
            Some(
                json!({"targetUrl": "https://c.example.com/webhooks/hubspot",
                        "throttling": {"maxConcurrentRequests": 10, "period": "SECONDLY"}}),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["targetUrl"], "https://c.example.com/webhooks/hubspot");
    assert_eq!(v["throttling"]["maxConcurrentRequests"], 10);
    assert!(v["createdAt"].is_string() && v["updatedAt"].is_string());
    assert_eq!(
        sb.hubspot()
            .webhook_target()
            .map(|t| (t.url, t.max_in_flight)),
        Some(("https://c.example.com/webhooks/hubspot".to_owned(), 10))
    );
    let (s, v) = api
        .send(
            Method::PUT,
            "settings",
            Some(json!({"targetUrl": "x", "throttling": {"maxConcurrentRequests": 10}})),
        )
        .await;
    assert_eq!(
        (s, &v["category"]),
        (StatusCode::BAD_REQUEST, &json!("VALIDATION_ERROR"))
    );

    let (s, created) = api
        .send(
            Method::POST,
            "subscriptions",
            Some(json!({"eventType": "deal.propertyChange", "propertyName": "dealstage", "active": true})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    assert!(created["id"].is_string(), "ids are strings: {created}");
    assert_eq!(created["eventType"], "deal.propertyChange");
    assert_eq!(created["propertyName"], "dealstage");
    assert_eq!(created["active"], true);

    for (body, why) in [
        (
            json!({"eventType": "deal.stageChange", "active": true}),
            "Unknown event type",
        ),
        (
            json!({"eventType": "deal.propertyChange", "active": true}),
            "propertyName is required",
        ),
        (
            json!({"eventType": "deal.propertyChange", "propertyName": "dealstage", "active": true}),
            "already exists",
        ),
    ] {
        let (s, v) = api.send(Method::POST, "subscriptions", Some(body)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        assert_eq!(v["category"], "VALIDATION_ERROR");
        assert!(v["message"].as_str().unwrap().contains(why), "{v}");
    }
    // Without `active`, a subscription starts paused (HubSpot's default).
    let (_, paused) = api
        .send(
            Method::POST,
            "subscriptions",
            Some(json!({"eventType": "contact.privacyDeletion"})),
        )
        .await;
    assert_eq!(paused["active"], false);

    let id = created["id"].as_str().unwrap();
    let (s, v) = api
        .send(
            Method::PATCH,
            &format!("subscriptions/{id}"),
            Some(json!({"active": false})),
        )
        .await;
    assert_eq!((s, &v["active"]), (StatusCode::OK, &json!(false)));
    let (s, _) = api
        .send(
            Method::PATCH,
            "subscriptions/99999",
            Some(json!({"active": false})),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, list) = api.send(Method::GET, "subscriptions", None).await;
    assert_eq!(list["results"].as_array().unwrap().len(), 2);
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn only_active_subscriptions_are_delivered_and_only_their_property() {
    let (received, url) = receiver().await;
    let sb = strict().await;
    let hs = sb.hubspot();
    let api = Api::new(&sb);
    let (s, _) = api
        .send(
            reqwest::Method::PUT,
            "settings",
            Some(json!({"targetUrl": url, "throttling": {"maxConcurrentRequests": 10}})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (_, stage) = api
        .send(
            reqwest::Method::POST,
            "subscriptions",
            Some(json!({"eventType": "deal.propertyChange", "propertyName": "dealstage", "active": true})),
        )
        .await;
    let deal = hs.objects(PORTAL, ObjectType::Deals)[0].id;
    hs.set_property(PORTAL, ObjectType::Deals, deal, "dealstage", "closedwon")
        .unwrap();
    // Not subscribed: another property, a creation.
    hs.set_property(PORTAL, ObjectType::Deals, deal, "amount", "99")
        .unwrap();
    hs.create_object(
        PORTAL,
        ObjectType::Contacts,
        props([("email", "a@example.com")]),
        &[],
    )
    .unwrap();
    hs.wait_idle().await;
    let got = received.lock().unwrap().clone();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["subscriptionType"], "deal.propertyChange");
    assert_eq!(got[0]["propertyName"], "dealstage");
    assert_eq!(
        got[0]["subscriptionId"].to_string(),
        stage["id"].as_str().unwrap(),
        "the event names the subscription that matched"
    );
    assert_eq!(hs.webhook_stats().unsubscribed, 2);

    // Paused: nothing more arrives.
    let id = stage["id"].as_str().unwrap();
    api.send(
        reqwest::Method::PATCH,
        &format!("subscriptions/{id}"),
        Some(json!({"active": false})),
    )
    .await;
    hs.set_property(PORTAL, ObjectType::Deals, deal, "dealstage", "closedlost")
        .unwrap();
    hs.wait_idle().await;
    assert_eq!(received.lock().unwrap().len(), 1);
    assert_eq!(hs.webhook_stats().unsubscribed, 3);
    sb.shutdown().await;
}
