//! Hostile tenants (issue 20, items 6 and 8): what a portal's owner, or
//! anyone who can log in to a portal through HubSpot, could do to the
//! operator's decisions and to the other tenants.
//!
//! - A login through HubSpot does not resume a portal an operator paused,
//!   nor move a private-app portal to OAuth.
//! - Documents beyond the limits (mappings, triggers, size) are refused by
//!   the API and the website, with the path of the problem.
//! - Costly website actions are rate-limited per portal (429 + Retry-After).
//!
//! Slow token refreshes are in `token_refresh.rs`.

use crate::support::{
    cli::KEY,
    website::{Auth, Login, WebEnv},
};
use axum::http::{Method, StatusCode, header};
use domain::portal::PortalDocument;
use serde_json::{Value, json};
use shared::crypto::SecretCipher;

const P1: u64 = 1001;
const P2: u64 = 1002;

fn cipher() -> SecretCipher {
    SecretCipher::from_base64(KEY).expect("the test key")
}

/// What an operator does: `worker portal apply` of `doc`.
async fn operator_apply(w: &WebEnv, doc: Value) -> anyhow::Result<()> {
    worker::cli::apply_text(&w.env.pool, &cipher(), &doc.to_string(), "cli:operator").await?;
    Ok(())
}

/// The portal's exported document, as JSON (what an operator edits).
async fn exported(w: &WebEnv, portal: u64) -> anyhow::Result<Value> {
    let doc: PortalDocument =
        worker::cli::export(&w.env.pool, domain::events::PortalId(portal)).await?;
    Ok(serde_json::to_value(doc)?)
}

async fn status_and_auth(w: &WebEnv, portal: u64) -> anyhow::Result<(String, String)> {
    Ok(
        sqlx::query_as("SELECT status, hubspot_auth_kind FROM portals WHERE portal_id = $1")
            .bind(portal as i64)
            .fetch_one(&w.env.pool)
            .await?,
    )
}

async fn configure(w: &WebEnv, login: &Login, portal: u64) -> anyhow::Result<()> {
    let a = w
        .api(
            Method::PUT,
            &format!("/api/v1/portals/{portal}/settings"),
            Auth::Session(login),
            Some(json!({"account_sid": "IRsandbox", "auth_token": "sandbox-token", "program_id": "1000"})),
        )
        .await;
    anyhow::ensure!(a.status.is_success(), "{} {}", a.status, a.body);
    Ok(())
}

#[tokio::test]
async fn a_login_does_not_resume_a_portal_an_operator_paused() -> anyhow::Result<()> {
    let w = WebEnv::start().await?;
    let owner = w.install(P1).await?;
    configure(&w, &owner, P1).await?;
    let mut doc = exported(&w, P1).await?;
    doc["status"] = json!("paused");
    operator_apply(&w, doc.clone()).await?;
    let paused_at: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("SELECT paused_at FROM portals WHERE portal_id = $1")
            .bind(P1 as i64)
            .fetch_one(&w.env.pool)
            .await?;

    // The owner logs in again (a fresh authorization code): still paused.
    let again = w.install(P1).await?;
    assert_eq!(status_and_auth(&w, P1).await?.0, "paused");
    let page = w.get("/settings?signed_in=1", Some(&again.cookie)).await;
    let day = paused_at.format("%Y-%m-%d").to_string();
    assert!(
        page.body.contains("paused by an operator on")
            && page.body.contains(&day)
            && page.body.contains("ask your operator to resume it"),
        "{}",
        page.body
    );
    // The owner's own saves do not resume it either.
    let a = w
        .api(
            Method::PUT,
            &format!("/api/v1/portals/{P1}/triggers"),
            Auth::Session(&again),
            Some(json!({"contacts": {"on_create": true}})),
        )
        .await;
    assert!(a.status.is_success(), "{} {}", a.status, a.body);
    let view = w
        .api(
            Method::GET,
            &format!("/api/v1/portals/{P1}"),
            Auth::Session(&again),
            None,
        )
        .await
        .json();
    assert_eq!(view["status"], "paused");
    assert!(
        view["paused_at"]
            .as_str()
            .is_some_and(|t| t.starts_with(&day)),
        "{view}"
    );

    // The operator resumes it, explicitly.
    doc["status"] = json!("active");
    operator_apply(&w, doc).await?;
    assert_eq!(status_and_auth(&w, P1).await?.0, "active");
    let page = w.get("/settings", Some(&again.cookie)).await;
    assert!(!page.body.contains("id=\"paused\""), "{}", page.body);
    w.finish().await;
    Ok(())
}

#[tokio::test]
async fn a_login_does_not_switch_a_private_app_portal_to_oauth() -> anyhow::Result<()> {
    let w = WebEnv::start().await?;
    // The operator set the portal up with its private-app token.
    let mut doc = crate::support::e2e::portal_doc(json!({}), json!({}));
    doc["portal_id"] = json!(P2);
    doc["hubspot"] = json!({ "private_app_token": format!("pat-sandbox-{P2}") });
    operator_apply(&w, doc).await?;

    let owner = w.install(P2).await?;
    assert_eq!(
        status_and_auth(&w, P2).await?,
        ("active".into(), "private_app".into())
    );
    let page = w.get("/settings", Some(&owner.cookie)).await;
    assert!(page.body.contains("id=\"private_app\""), "{}", page.body);
    // The login's tokens are kept (encrypted, unused), for an explicit switch.
    let stored: bool = sqlx::query_scalar(
        "SELECT hubspot_refresh_token IS NOT NULL FROM portals WHERE portal_id = $1",
    )
    .bind(P2 as i64)
    .fetch_one(&w.env.pool)
    .await?;
    assert!(stored);
    // The owner's saves keep it on the private app.
    configure(&w, &owner, P2).await?;
    assert_eq!(status_and_auth(&w, P2).await?.1, "private_app");

    // An operator switches, explicitly, with the document.
    let mut doc = exported(&w, P2).await?;
    assert_eq!(doc["hubspot"]["auth_kind"], "private_app");
    doc["hubspot"] = json!({ "auth_kind": "oauth" });
    operator_apply(&w, doc).await?;
    assert_eq!(status_and_auth(&w, P2).await?.1, "oauth");
    // The OAuth access works (a property list through the refreshed token).
    w.env.sandbox.hubspot().expire_access_tokens(P2);
    sqlx::query("UPDATE portals SET hubspot_token_expires_at = now() WHERE portal_id = $1")
        .bind(P2 as i64)
        .execute(&w.env.pool)
        .await?;
    let a = w
        .api(
            Method::GET,
            &format!("/api/v1/portals/{P2}/properties/deals"),
            Auth::Session(&owner),
            None,
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    w.finish().await;
    Ok(())
}

#[tokio::test]
async fn documents_beyond_the_limits_are_refused_by_the_api_and_the_website() -> anyhow::Result<()>
{
    let w = WebEnv::start().await?;
    let owner = w.install(P1).await?;
    configure(&w, &owner, P1).await?;
    let before = exported(&w, P1).await?;
    let put = |path: &'static str, body: Value| {
        let owner = owner.clone();
        let w = &w;
        async move {
            w.api(
                Method::PUT,
                &format!("/api/v1/portals/{P1}/{path}"),
                Auth::Session(&owner),
                Some(body),
            )
            .await
        }
    };
    let rows: Vec<_> = (0..201)
        .map(|i| json!({ "const": "x", "to": format!("Text{}", i % 50 + 1) }))
        .collect();
    let props: Vec<_> = (0..101).map(|i| json!(format!("prop_{i}"))).collect();
    let cases = [
        (
            "201 mappings of one type",
            "mappings",
            json!({ "deals": rows }),
            "mappings.deals: 201 mappings; at most 200",
        ),
        (
            "101 property triggers",
            "triggers",
            json!({ "contacts": { "on_change": props } }),
            "triggers.contacts.on_change: 101 property triggers; at most 100",
        ),
    ];
    let mut failures = vec![];
    for (name, path, body, expected) in cases {
        let a = put(path, body).await;
        let details = a.json()["details"].to_string();
        if a.status != StatusCode::UNPROCESSABLE_ENTITY || !details.contains(expected) {
            failures.push(format!("{name}: {} {:.300}", a.status, a.body));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    assert_eq!(exported(&w, P1).await?, before, "nothing changed");

    // Each request within the body limit, the document beyond 256 KiB.
    let values: Vec<_> = (0..200).map(|i| format!("value-{i:05}")).collect();
    let conditions: Vec<_> = (0..60)
        .map(|i| json!({ "property": format!("prop_{i}"), "values": values }))
        .collect();
    let a = put("triggers", json!({ "deals": { "on_change": conditions } })).await;
    assert!(a.status.is_success(), "{} {:.300}", a.status, a.body);
    let big_map: serde_json::Map<_, _> = (0..100)
        .map(|i| (format!("value-{i}-{}", "v".repeat(40)), json!("y")))
        .collect();
    let heavy: Vec<_> = (0..30)
        .map(
            |i| json!({ "from": "dealname", "to": format!("Text{}", i + 1), "value_map": big_map }),
        )
        .collect();
    let a = put("mappings", json!({ "deals": heavy })).await;
    assert_eq!(
        a.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{:.300}",
        a.body
    );
    assert!(
        a.json()["details"].to_string().contains("at most 256 KiB"),
        "{:.300}",
        a.body
    );
    let before = exported(&w, P1).await?;

    // The website's forms: one property trigger more than the limit.
    let mut doc = before.clone();
    let hundred: Vec<Value> = (0..100).map(|i| json!(format!("prop_{i}"))).collect();
    doc["triggers"] = json!({ "contacts": { "on_change": hundred } });
    operator_apply(&w, doc).await?;
    let page = w
        .submit(
            &owner,
            "/triggers/add",
            &[("object_type", "contacts"), ("property", "prop_100")],
        )
        .await;
    assert_eq!(
        page.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{:.500}",
        page.body
    );
    assert!(
        page.body.contains("101 property triggers; at most 100"),
        "{:.2000}",
        page.body
    );
    w.finish().await;
    Ok(())
}

#[tokio::test]
async fn costly_website_actions_are_rate_limited_per_portal() -> anyhow::Result<()> {
    let w = WebEnv::start().await?;
    let mine = w.install(P1).await?;
    let theirs = w.install(P2).await?;
    let send = |login: &Login, portal: u64| {
        let login = login.clone();
        let w = &w;
        async move {
            w.api(
                Method::POST,
                &format!("/api/v1/portals/{portal}/preview"),
                Auth::Session(&login),
                Some(json!({ "object_type": "deals", "object_id": 1 })),
            )
            .await
        }
    };
    for i in 0..10 {
        let a = send(&mine, P1).await;
        assert_ne!(
            a.status,
            StatusCode::TOO_MANY_REQUESTS,
            "preview {i}: {}",
            a.body
        );
    }
    let a = send(&mine, P1).await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS, "{}", a.body);
    assert_eq!(a.json()["error"], "rate_limited");
    let retry: u64 = a
        .headers
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!((1..=4).contains(&retry), "{retry}");
    // The page flavour: a readable page, same limit.
    let page = w
        .submit(
            &mine,
            "/preview",
            &[("object_type", "deals"), ("object_id", "1")],
        )
        .await;
    assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        page.body.contains("Too many previews for this portal"),
        "{}",
        page.body
    );
    assert!(page.headers.contains_key(header::RETRY_AFTER));
    // Another portal is not affected, nor are this portal's reads.
    let other = send(&theirs, P2).await;
    assert_ne!(
        other.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        other.body
    );
    let read = w
        .api(
            Method::GET,
            &format!("/api/v1/portals/{P1}"),
            Auth::Session(&mine),
            None,
        )
        .await;
    assert_eq!(read.status, StatusCode::OK);
    // Saves have their own budget: 30 at once.
    let mut limited = None;
    for i in 0..31 {
        let a = w
            .api(
                Method::PUT,
                &format!("/api/v1/portals/{P1}/triggers"),
                Auth::Session(&mine),
                Some(json!({})),
            )
            .await;
        if a.status == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(i);
            break;
        }
    }
    assert_eq!(limited, Some(30), "the 31st save in a burst is refused");
    w.finish().await;
    Ok(())
}
