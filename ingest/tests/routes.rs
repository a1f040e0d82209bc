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
    for (payload, needle) in [
        ("{}", "JSON array"),
        ("[{\"portalId\":1}]", "missing field"),
        ("[1,2]", "JSON object"),
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
        "ingest_publish_duration_seconds_bucket",
    ] {
        assert!(text.contains(name), "{name} missing from:\n{text}");
    }
}
