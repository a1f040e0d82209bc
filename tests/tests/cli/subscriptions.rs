//! `worker subscriptions --apply` against the fake HubSpot's Webhooks API,
//! as an operator runs it: it subscribes the app to what the portals need
//! and sets the target URL, a second run changes nothing, a trigger change
//! creates, pauses and re-activates the right ones, and the fake (strict,
//! as HubSpot) delivers only what is subscribed.

// In tests a panic is the failure report.
#![allow(clippy::unwrap_used)]

use std::process::Output;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use sandbox::{ObjectType, PortalSeed, Sandbox, SandboxConfig, SubscriptionMode, props};
use serde_json::Value;

use crate::support::cli::{DOC, Db, text};

const PORTAL: u64 = 62515;
const APP: &str = "4242424";
const KEY: &str = "sandbox-developer-key";

type Received = Arc<Mutex<Vec<Value>>>;

async fn receive(State(r): State<Received>, body: Bytes) -> &'static str {
    let events: Vec<Value> = serde_json::from_slice(&body).unwrap();
    r.lock().unwrap().extend(events);
    "ok"
}

/// Stands in for ingest: answers 200 and keeps the events; returns its base URL.
async fn receiver() -> (Received, String) {
    let r = Received::default();
    let app = axum::Router::new()
        .route("/webhooks/hubspot", axum::routing::post(receive))
        .with_state(r.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (r, base)
}

async fn strict_sandbox() -> Sandbox {
    Sandbox::start(SandboxConfig {
        portals: vec![PortalSeed::sized(PORTAL, 3)],
        webhook_subscriptions: SubscriptionMode::AsSubscribed,
        ..SandboxConfig::default()
    })
    .await
    .unwrap()
}

/// Runs the worker without blocking the runtime the fakes run on.
fn worker(db: &Db, args: &[&str], stdin: Option<&str>, env: &[(&str, &str)]) -> Output {
    tokio::task::block_in_place(|| db.run_env(args, stdin, env))
}

/// `(event type, property, active)` of the app's subscriptions, sorted.
fn app_state(sb: &Sandbox) -> Vec<(String, Option<String>, bool)> {
    let mut v: Vec<_> = sb
        .hubspot()
        .app_subscriptions()
        .into_iter()
        .map(|s| (s.event_type, s.property_name, s.active))
        .collect();
    v.sort();
    v
}

fn sub(t: &str, p: Option<&str>, active: bool) -> (String, Option<String>, bool) {
    (t.to_owned(), p.map(str::to_owned), active)
}

#[tokio::test(flavor = "multi_thread")]
async fn apply_subscribes_the_app_once_and_follows_the_triggers() {
    let (received, public) = receiver().await;
    let sb = strict_sandbox().await;
    let db = Db::fresh().await;
    let api = sb.hubspot_url();
    let env = [
        ("CONNECTOR_HUBSPOT_API_URL", api.as_str()),
        ("CONNECTOR_HUBSPOT_APP_ID", APP),
        ("CONNECTOR_HUBSPOT_DEVELOPER_API_KEY", KEY),
        ("CONNECTOR_PUBLIC_URL", public.as_str()),
    ];
    let out = worker(&db, &["portal", "apply", "-"], Some(DOC), &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));

    // A dry run shows the plan and changes nothing.
    let out = worker(&db, &["subscriptions", "--dry-run"], None, &env);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    assert!(shown.contains("would create contact.creation"), "{shown}");
    assert!(shown.contains("dry run: nothing changed"), "{shown}");
    assert!(app_state(&sb).is_empty());
    assert!(sb.hubspot().webhook_target().is_none());

    let out = worker(&db, &["subscriptions", "--apply"], None, &env);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    let target = format!("{public}/webhooks/hubspot");
    assert!(
        shown.contains(&format!("set target URL {target}")),
        "{shown}"
    );
    assert!(
        shown.contains("created contact.propertyChange of lifecyclestage"),
        "{shown}"
    );
    assert!(!shown.contains(KEY), "the key is never printed");
    let subscribed = vec![
        sub("contact.creation", None, true),
        sub("contact.merge", None, true),
        sub("contact.privacyDeletion", None, true),
        sub("contact.propertyChange", Some("lifecyclestage"), true),
        sub("contact.restore", None, true),
    ];
    assert_eq!(app_state(&sb), subscribed);
    assert_eq!(sb.hubspot().webhook_target().map(|t| t.url), Some(target));

    // Idempotent.
    let ids: Vec<u64> = sb
        .hubspot()
        .app_subscriptions()
        .iter()
        .map(|s| s.id)
        .collect();
    let out = worker(&db, &["subscriptions", "--apply"], None, &env);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("nothing to change (5 subscriptions active as needed"),
        "{}",
        text(&out.stdout)
    );
    let again: Vec<u64> = sb
        .hubspot()
        .app_subscriptions()
        .iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(again, ids);

    // The trigger now watches hs_lead_status instead of lifecyclestage.
    let changed = DOC.replace(r#"["lifecyclestage"]"#, r#"["hs_lead_status"]"#);
    let out = worker(&db, &["portal", "apply", "-"], Some(&changed), &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = worker(&db, &["subscriptions", "--apply"], None, &env);
    let shown = text(&out.stdout);
    assert!(
        shown.contains("created contact.propertyChange of hs_lead_status"),
        "{shown}"
    );
    assert!(
        shown.contains("paused contact.propertyChange of lifecyclestage"),
        "{shown}"
    );
    assert!(app_state(&sb).contains(&sub(
        "contact.propertyChange",
        Some("lifecyclestage"),
        false
    )));

    // And back: the paused one is re-activated, not created again.
    let out = worker(&db, &["portal", "apply", "-"], Some(DOC), &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = worker(&db, &["subscriptions", "--apply"], None, &env);
    let shown = text(&out.stdout);
    assert!(
        shown.contains("re-activated contact.propertyChange of lifecyclestage"),
        "{shown}"
    );
    assert!(
        shown.contains("paused contact.propertyChange of hs_lead_status"),
        "{shown}"
    );
    assert_eq!(sb.hubspot().app_subscriptions().len(), 6);

    assert_delivers_only_what_is_subscribed(&sb, &received).await;
    db.drop().await;
    sb.shutdown().await;
}

/// With `contact.propertyChange` of lifecyclestage active, that of
/// hs_lead_status paused and no deal subscription: only the first arrives.
async fn assert_delivers_only_what_is_subscribed(sb: &Sandbox, received: &Received) {
    let hs = sb.hubspot();
    let contact = hs.objects(PORTAL, ObjectType::Contacts)[0].id;
    hs.set_property(
        PORTAL,
        ObjectType::Contacts,
        contact,
        "lifecyclestage",
        "customer",
    )
    .unwrap();
    hs.set_property(
        PORTAL,
        ObjectType::Contacts,
        contact,
        "hs_lead_status",
        "OPEN",
    )
    .unwrap();
    hs.create_object(PORTAL, ObjectType::Deals, props([("dealname", "x")]), &[])
        .unwrap();
    hs.wait_idle().await;
    let got: Vec<(String, Option<String>)> = received
        .lock()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["subscriptionType"].as_str().unwrap().to_owned(),
                e["propertyName"].as_str().map(str::to_owned),
            )
        })
        .collect();
    assert_eq!(
        got,
        [(
            "contact.propertyChange".to_owned(),
            Some("lifecyclestage".to_owned())
        )]
    );
    assert_eq!(hs.webhook_stats().unsubscribed, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn apply_names_what_is_missing_and_what_hubspot_refused() {
    let sb = strict_sandbox().await;
    let db = Db::fresh().await;
    let api = sb.hubspot_url();
    let full = [
        ("CONNECTOR_HUBSPOT_API_URL", api.as_str()),
        ("CONNECTOR_HUBSPOT_APP_ID", APP),
        ("CONNECTOR_HUBSPOT_DEVELOPER_API_KEY", KEY),
        ("CONNECTOR_PUBLIC_URL", "https://c.example.com"),
    ];
    for (missing, named) in [
        (1, "CONNECTOR_HUBSPOT_APP_ID"),
        (2, "CONNECTOR_HUBSPOT_DEVELOPER_API_KEY"),
        (3, "CONNECTOR_PUBLIC_URL"),
    ] {
        let env: Vec<(&str, &str)> = full
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != missing)
            .map(|(_, kv)| *kv)
            .collect();
        let out = worker(&db, &["subscriptions", "--apply"], None, &env);
        assert!(!out.status.success());
        let err = text(&out.stderr);
        assert!(err.contains(named) && err.contains("not set"), "{err}");
    }
    let mut env = full.to_vec();
    env[1] = ("CONNECTOR_HUBSPOT_APP_ID", "my-app");
    let err = text(&worker(&db, &["subscriptions", "--apply"], None, &env).stderr);
    assert!(
        err.contains("CONNECTOR_HUBSPOT_APP_ID must be the app's numeric id"),
        "{err}"
    );

    let wrong_key = "wrong-developer-key-1234";
    let mut env = full.to_vec();
    env[2] = ("CONNECTOR_HUBSPOT_DEVELOPER_API_KEY", wrong_key);
    let out = worker(&db, &["subscriptions", "--apply"], None, &env);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("HubSpot answered 401 to GET /webhooks/v3/4242424/subscriptions")
            && err.contains("The API key provided is invalid"),
        "{err}"
    );
    assert!(!err.contains(wrong_key), "the key is never printed: {err}");

    let mut env = full.to_vec();
    env[1] = ("CONNECTOR_HUBSPOT_APP_ID", "777");
    let err = text(&worker(&db, &["subscriptions", "--apply"], None, &env).stderr);
    assert!(
        err.contains("HubSpot answered 404") && err.contains("App 777 not found"),
        "{err}"
    );

    // Unreachable: the error names the path, never the URL with the key.
    let mut env = full.to_vec();
    env[0] = ("CONNECTOR_HUBSPOT_API_URL", "http://127.0.0.1:9");
    let err = text(&worker(&db, &["subscriptions", "--apply"], None, &env).stderr);
    assert!(err.contains("HubSpot unreachable for GET"), "{err}");
    assert!(!err.contains(KEY), "{err}");
    assert!(app_state(&sb).is_empty());
    db.drop().await;
    sb.shutdown().await;
}
