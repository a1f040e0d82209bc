//! The fake HubSpot's account information (`GET /account-info/v3/details`):
//! the documented shape, the portal's company currency (configurable, or
//! absent), bearer auth and the `oauth` scope like HubSpot.

// In tests a panic is the failure report.
#![allow(clippy::unwrap_used)]

use sandbox::{Sandbox, SandboxConfig};
use serde_json::{Value, json};

const PORTAL: u64 = 1001;
const TOKEN: &str = "pat-sandbox-1001";
const REDIRECT: &str = "http://127.0.0.1:9/oauth/callback";

async fn details(sb: &Sandbox, token: Option<&str>) -> (u16, Value) {
    let mut req =
        reqwest::Client::new().get(format!("{}/account-info/v3/details", sb.hubspot_url()));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    (
        resp.status().as_u16(),
        resp.json().await.unwrap_or(Value::Null),
    )
}

/// An OAuth access token for `PORTAL` granted only `scope`.
async fn token_with_scope(sb: &Sandbox, scope: &str) -> String {
    let base = sb.hubspot_url();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let approved = client
        .post(format!("{base}/oauth/authorize"))
        .form(&[
            ("client_id", "sandbox-client-id"),
            ("redirect_uri", REDIRECT),
            ("scope", scope),
            ("state", "s"),
            ("portal_id", &PORTAL.to_string()),
            ("action", "approve"),
        ])
        .send()
        .await
        .unwrap();
    let loc = url::Url::parse(approved.headers()["location"].to_str().unwrap()).unwrap();
    let code = loc
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let tokens: Value = client
        .post(format!("{base}/oauth/2026-03/token"))
        .form(&[
            ("client_id", "sandbox-client-id"),
            ("client_secret", "sandbox-client-secret"),
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    tokens["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn account_details_carry_the_company_currency() {
    let sb = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let (status, body) = details(&sb, Some(TOKEN)).await;
    assert_eq!(status, 200);
    assert_eq!(body["portalId"], PORTAL);
    assert_eq!(body["companyCurrency"], "USD");
    for field in [
        "accountType",
        "timeZone",
        "additionalCurrencies",
        "utcOffset",
        "utcOffsetMilliseconds",
        "uiDomain",
        "dataHostingLocation",
    ] {
        assert!(!body[field].is_null(), "{field} missing in {body}");
    }

    sb.hubspot()
        .set_company_currency(PORTAL, Some("EUR"))
        .unwrap();
    assert_eq!(details(&sb, Some(TOKEN)).await.1["companyCurrency"], "EUR");
    // The control API sets it too; null: the answer carries none.
    let resp = reqwest::Client::new()
        .put(format!(
            "{}/_sandbox/portals/{PORTAL}/company-currency",
            sb.hubspot_url()
        ))
        .json(&json!({"currency": null}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let (status, body) = details(&sb, Some(TOKEN)).await;
    assert_eq!(status, 200);
    assert!(body.get("companyCurrency").is_none(), "{body}");
    assert_eq!(sb.hubspot().account_info_reads(PORTAL), 3);

    // Bearer auth like every API route, and the `oauth` scope.
    let (status, body) = details(&sb, None).await;
    assert_eq!(status, 401);
    assert_eq!(body["category"], "INVALID_AUTHENTICATION");
    let narrow = token_with_scope(&sb, "crm.objects.contacts.read").await;
    let (status, body) = details(&sb, Some(&narrow)).await;
    assert_eq!(status, 403);
    assert_eq!(body["category"], "MISSING_SCOPES");
    let granted = token_with_scope(&sb, "oauth").await;
    assert_eq!(details(&sb, Some(&granted)).await.0, 200);
    sb.shutdown().await;
}
