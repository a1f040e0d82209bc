//! Route tests without a socket or a broker (`tower::ServiceExt::oneshot`):
//! everything refused before publishing, and readiness without a broker.

use axum::{
    body::{Body, to_bytes},
    http::{Request, StatusCode},
};
use domain::signature;
use secrecy::SecretString;
use serde_json::Value;
use shared::config::Settings;
use tower::ServiceExt;

const SECRET: &str = "route-test-secret";

fn app() -> axum::Router {
    let mut s = Settings::defaults();
    // Nothing listens here: any attempt to publish would fail, proving the
    // refusals below happen before the broker is involved.
    s.amqp_url = "amqp://guest:guest@127.0.0.1:1/%2f".into();
    s.hubspot_client_secret = Some(SecretString::from(SECRET));
    s.public_url = Some("https://hooks.example.com".into());
    s.max_body_bytes = 4096;
    ingest::app(ingest::AppState::from_settings(&s).expect("valid settings"))
}

fn now_ms() -> String {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis()
        .to_string()
}

fn signed(body: &str) -> Request<Body> {
    let ts = now_ms();
    let uri = "https://hooks.example.com/webhooks/hubspot";
    Request::post("/webhooks/hubspot")
        .header(
            "X-HubSpot-Signature-v3",
            signature::sign_v3(SECRET.as_bytes(), "POST", uri, body.as_bytes(), &ts),
        )
        .header("X-HubSpot-Request-Timestamp", ts)
        .body(Body::from(body.to_owned()))
        .expect("valid request")
}

async fn call(req: Request<Body>) -> (StatusCode, Value) {
    let resp = app().oneshot(req).await.expect("infallible");
    let status = resp.status();
    let bytes = to_bytes(resp.into_body(), usize::MAX).await.expect("body");
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn unsigned_is_401_naming_the_problem() {
    let (status, body) = call(
        Request::post("/webhooks/hubspot")
            .body(Body::from("[]"))
            .expect("valid"),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "missing_signature");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("missing signature")),
        "{body}"
    );
}

#[tokio::test]
async fn bad_payloads_are_400_after_a_valid_signature() {
    // Only a body that is not a JSON array of objects is refused as a
    // whole; odd events inside one are handled one by one.
    for (payload, needle) in [
        ("{}", "JSON array"),
        ("[{\"portalId\":1},2]", "event 1: must be a JSON object"),
        ("[1,2]", "JSON object"),
        ("[]", "empty array"),
        ("not json", "not valid JSON"),
    ] {
        let (status, body) = call(signed(payload)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{payload}");
        assert_eq!(body["error"], "invalid_payload");
        assert!(
            body["message"].as_str().is_some_and(|m| m.contains(needle)),
            "{payload}: {body}"
        );
    }
}

#[tokio::test]
async fn oversized_bodies_are_413_with_or_without_content_length() {
    let big = "x".repeat(5000);
    let (status, body) = call(signed(&big)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body["error"], "body_too_large");
    // A chunked body (no Content-Length) is cut off while reading.
    let stream = futures::stream::iter((0..10).map(|_| Ok::<_, std::io::Error>(vec![b' '; 1000])));
    let req = Request::post("/webhooks/hubspot")
        .body(Body::from_stream(stream))
        .expect("valid");
    let (status, _) = call(req).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn broker_down_means_503_and_not_ready() {
    let ok =
        r#"[{"portalId":1,"objectId":2,"occurredAt":3,"subscriptionType":"contact.creation"}]"#;
    let (status, body) = call(signed(ok)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["error"], "broker_unavailable");
    // The broker's address and error stay in the log; the answer names a reference.
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.contains("reference"), "{message}");
    assert!(!message.contains("127.0.0.1"), "{message}");
    let (status, _) = call(Request::get("/readyz").body(Body::empty()).expect("valid")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let (status, _) = call(Request::get("/healthz").body(Body::empty()).expect("valid")).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn other_methods_are_refused() {
    let resp = app()
        .oneshot(
            Request::get("/webhooks/hubspot")
                .body(Body::empty())
                .expect("valid"),
        )
        .await
        .expect("ok");
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn metrics_are_listed_before_any_webhook() {
    let resp = app()
        .oneshot(Request::get("/metrics").body(Body::empty()).expect("valid"))
        .await
        .expect("ok");
    assert_eq!(resp.status(), StatusCode::OK);
    let text = String::from_utf8(
        to_bytes(resp.into_body(), usize::MAX)
            .await
            .expect("body")
            .to_vec(),
    )
    .expect("utf8");
    for name in [
        "ingest_requests_total{outcome=\"accepted\"}",
        "ingest_requests_total{outcome=\"broker_unavailable\"}",
        "ingest_events_accepted_total",
        "ingest_events_invalid_total",
        "ingest_events_ignored_total{reason=\"association_change\"}",
        "ingest_webhook_secrets_refresh_failures_total{source=\"database\"}",
        "ingest_publish_duration_seconds_bucket",
    ] {
        assert!(text.contains(name), "{name} missing from:\n{text}");
    }
}

#[tokio::test]
async fn a_delivery_of_only_ignored_events_needs_no_broker() {
    // An association change carries no objectId: ignored, nothing to
    // publish, so even without a broker the answer is 200.
    let body = r#"[{"portalId":1,"occurredAt":3,"subscriptionType":"contact.associationChange","fromObjectId":2,"toObjectId":5,"associationType":"CONTACT_TO_COMPANY"}]"#;
    let (status, answer) = call(signed(body)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["events"], 0);
    assert_eq!(answer["ignored"], 1);
    assert_eq!(answer["invalid"], 0);
}

/// Ingest with per-portal secrets from a file (portal 101: `secret-a`,
/// 202: `secret-b`) besides the default; no broker.
fn app_with_file(default: Option<&str>) -> (axum::Router, std::path::PathBuf) {
    let path = std::env::temp_dir().join(format!("webhook-secrets-{}", uuid::Uuid::new_v4()));
    std::fs::write(
        &path,
        "# private apps\n101=secret-a-0123456789\n202 = secret-b-0123456789\n",
    )
    .expect("write");
    let mut s = Settings::defaults();
    s.amqp_url = "amqp://guest:guest@127.0.0.1:1/%2f".into();
    s.hubspot_client_secret = default.map(SecretString::from);
    s.public_url = Some("https://hooks.example.com".into());
    s.webhook_secrets_file = Some(path.display().to_string());
    s.webhook_secrets_db = false;
    let app = ingest::app(ingest::AppState::from_settings(&s).expect("valid settings"));
    (app, path)
}

fn signed_with(secret: &str, body: &str) -> Request<Body> {
    let ts = now_ms();
    let uri = "https://hooks.example.com/webhooks/hubspot";
    Request::post("/webhooks/hubspot")
        .header(
            "X-HubSpot-Signature-v3",
            signature::sign_v3(secret.as_bytes(), "POST", uri, body.as_bytes(), &ts),
        )
        .header("X-HubSpot-Request-Timestamp", ts)
        .body(Body::from(body.to_owned()))
        .expect("valid request")
}

fn event_of(portal: u64) -> String {
    format!(
        r#"[{{"portalId":{portal},"objectId":2,"occurredAt":3,"subscriptionType":"contact.creation"}}]"#
    )
}

#[tokio::test]
async fn each_portal_is_verified_with_its_own_secret() {
    let (app, path) = app_with_file(Some(SECRET));
    let status = |req: Request<Body>| {
        let app = app.clone();
        async move { app.oneshot(req).await.expect("infallible").status() }
    };
    // Past the signature means on to the (absent) broker: 503.
    let passed = StatusCode::SERVICE_UNAVAILABLE;
    assert_eq!(
        status(signed_with("secret-a-0123456789", &event_of(101))).await,
        passed
    );
    assert_eq!(
        status(signed_with("secret-b-0123456789", &event_of(202))).await,
        passed
    );
    assert_eq!(
        status(signed_with(SECRET, &event_of(303))).await,
        passed,
        "others: the default"
    );
    for (secret, portal, why) in [
        (
            "secret-a-0123456789",
            202,
            "portal A's secret claiming portal B",
        ),
        (SECRET, 101, "the default secret for a portal with its own"),
        (
            "secret-b-0123456789",
            303,
            "a portal's secret for a portal without one",
        ),
    ] {
        assert_eq!(
            status(signed_with(secret, &event_of(portal))).await,
            StatusCode::UNAUTHORIZED,
            "{why}"
        );
    }
    // A delivery naming two portals can only be verified with the default.
    let mixed = r#"[{"portalId":101,"objectId":2,"occurredAt":3,"subscriptionType":"contact.creation"},{"portalId":202,"objectId":2,"occurredAt":3,"subscriptionType":"contact.creation"}]"#;
    assert_eq!(
        status(signed_with("secret-a-0123456789", mixed)).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(status(signed_with(SECRET, mixed)).await, passed);
    // Nor can portal A's secret slip an (unreadable) event of portal B in.
    let smuggled = r#"[{"portalId":101,"objectId":2,"occurredAt":3,"subscriptionType":"contact.creation"},{"portalId":202,"objectId":"x","occurredAt":3,"subscriptionType":"contact.creation"}]"#;
    assert_eq!(
        status(signed_with("secret-a-0123456789", smuggled)).await,
        StatusCode::UNAUTHORIZED
    );
    // A body refused as a whole is refused only once the signature holds.
    assert_eq!(
        status(signed_with("nope", "[1]")).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        status(signed_with(SECRET, "[1]")).await,
        StatusCode::BAD_REQUEST
    );
    std::fs::remove_file(path).expect("remove");
}

#[tokio::test]
async fn without_a_default_secret_unknown_portals_are_401() {
    let (app, path) = app_with_file(None);
    let resp = app
        .clone()
        .oneshot(signed_with(SECRET, &event_of(303)))
        .await
        .expect("infallible");
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let resp = app
        .oneshot(signed_with("secret-a-0123456789", &event_of(101)))
        .await
        .expect("infallible");
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE, "verified");
    std::fs::remove_file(path).expect("remove");
}

#[test]
fn a_bad_secrets_file_stops_ingest_at_start_naming_the_line() {
    let path = std::env::temp_dir().join(format!("webhook-secrets-{}", uuid::Uuid::new_v4()));
    std::fs::write(&path, "101=secret-a-0123456789\nnot a line\n").expect("write");
    let mut s = Settings::defaults();
    s.hubspot_client_secret = Some(SecretString::from(SECRET));
    s.webhook_secrets_file = Some(path.display().to_string());
    let e = ingest::AppState::from_settings(&s)
        .err()
        .expect("refused")
        .to_string();
    assert!(e.contains("CONNECTOR_WEBHOOK_SECRETS_FILE"), "{e}");
    assert!(e.contains("line 2: expected PORTAL_ID=SECRET"), "{e}");
    assert!(!e.contains("secret-a-0123456789"), "{e}");
    std::fs::remove_file(&path).expect("remove");
    let e = ingest::AppState::from_settings(&s)
        .err()
        .expect("missing file");
    assert!(e.to_string().contains("CONNECTOR_WEBHOOK_SECRETS_FILE"));
}
