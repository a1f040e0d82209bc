//! The fake HubSpot's OAuth: authorize page → code → token → introspect →
//! refresh → expiry → uninstall → `invalid_grant` / `BAD_REFRESH_TOKEN`.

// In tests a panic is the failure report.
#![allow(clippy::unwrap_used)]

use sandbox::{PortalSeed, Sandbox, SandboxConfig};
use serde_json::Value;

const REDIRECT: &str = "http://127.0.0.1:9/oauth/callback";

async fn token(client: &reqwest::Client, base: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let mut all = vec![
        ("client_id", "sandbox-client-id"),
        ("client_secret", "sandbox-client-secret"),
    ];
    all.extend_from_slice(form);
    let resp = client
        .post(format!("{base}/oauth/2026-03/token"))
        .form(&all)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

/// Exchanges an authorization code issued for [`REDIRECT`].
async fn exchange(client: &reqwest::Client, base: &str, code: &str) -> (u16, Value) {
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
    ];
    token(client, base, &form).await
}

#[tokio::test(flavor = "multi_thread")]
async fn authorize_exchange_introspect_refresh_uninstall() {
    let cfg = SandboxConfig {
        portals: vec![PortalSeed::sized(1001, 3), PortalSeed::sized(2002, 3)],
        ..Default::default()
    };
    let sb = Sandbox::start(cfg).await.unwrap();
    let base = sb.hubspot_url();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    // The page lists the accounts to choose from.
    let page = client
        .get(format!("{base}/oauth/authorize?client_id=sandbox-client-id&redirect_uri={REDIRECT}&scope=oauth&state=xyz"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("2002") && page.contains("Connect app"));

    // "Connect app" redirects with code and state.
    let resp = client
        .post(format!("{base}/oauth/authorize"))
        .form(&[
            ("client_id", "sandbox-client-id"),
            ("redirect_uri", REDIRECT),
            ("scope", "oauth crm.objects.contacts.read"),
            ("state", "xyz"),
            ("portal_id", "2002"),
            ("action", "approve"),
        ])
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_redirection());
    let location = url::Url::parse(resp.headers()["location"].to_str().unwrap()).unwrap();
    assert!(location.as_str().starts_with(REDIRECT));
    let q: std::collections::HashMap<_, _> = location.query_pairs().into_owned().collect();
    assert_eq!(q["state"], "xyz");
    let code = q["code"].clone();

    // Wrong redirect_uri, then the right one; a code is single-use.
    let (status, body) = token(
        &client,
        &base,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://evil/"),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let code = sb.hubspot().authorize(2002, REDIRECT, "s2").unwrap();
    let (status, tokens) = exchange(&client, &base, &code).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["token_type"], "bearer");
    assert_eq!(tokens["expires_in"], 1800);
    let access = tokens["access_token"].as_str().unwrap().to_string();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_string();
    let (status, _) = exchange(&client, &base, &code).await;
    assert_eq!(status, 400);
    let resp = client
        .post(format!("{base}/oauth/2026-03/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("client_id", "sandbox-client-id"),
            ("client_secret", "nope"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);

    // Introspection tells the portal.
    let info: Value = client
        .post(format!("{base}/oauth/2026-03/token/introspect"))
        .form(&[
            ("client_id", "sandbox-client-id"),
            ("client_secret", "sandbox-client-secret"),
            ("token", &access),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["active"], true);
    assert_eq!(info["hub_id"], 2002);

    // The access token reads the portal's data; the v1 alias refreshes too.
    let read = |token: String| {
        let client = client.clone();
        let url = format!("{base}/crm/v3/objects/contacts/1000001");
        async move { client.get(url).bearer_auth(token).send().await.unwrap() }
    };
    assert_eq!(read(access.clone()).await.status(), 200);
    let resp = client
        .post(format!("{base}/oauth/v1/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh.as_str()),
            ("client_id", "sandbox-client-id"),
            ("client_secret", "sandbox-client-secret"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    // Expired access tokens get EXPIRED_AUTHENTICATION; refresh fixes it.
    sb.hubspot().expire_access_tokens(2002);
    let resp = read(access.clone()).await;
    assert_eq!(resp.status(), 401);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["category"],
        "EXPIRED_AUTHENTICATION"
    );
    let (status, fresh) = token(
        &client,
        &base,
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(fresh["refresh_token"], refresh.as_str());
    let fresh_access = fresh["access_token"].as_str().unwrap().to_string();
    assert_eq!(read(fresh_access.clone()).await.status(), 200);

    // A token without the scope is refused with MISSING_SCOPES.
    let narrow = client
        .post(format!("{base}/oauth/authorize"))
        .form(&[
            ("client_id", "sandbox-client-id"),
            ("redirect_uri", REDIRECT),
            ("scope", "oauth"),
            ("state", "s"),
            ("portal_id", "2002"),
            ("action", "approve"),
        ])
        .send()
        .await
        .unwrap();
    let loc = url::Url::parse(narrow.headers()["location"].to_str().unwrap()).unwrap();
    let narrow_code = loc
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let (_, narrow_tokens) = exchange(&client, &base, &narrow_code).await;
    let resp = read(narrow_tokens["access_token"].as_str().unwrap().to_string()).await;
    assert_eq!(resp.status(), 403);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["category"],
        "MISSING_SCOPES"
    );

    // Uninstall: refresh answers invalid_grant / BAD_REFRESH_TOKEN, tokens stop working.
    let resp = client
        .post(format!("{base}/_sandbox/portals/2002/uninstall"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(!sb.hubspot().is_installed(2002));
    let (status, body) = token(
        &client,
        &base,
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(body["status"], "BAD_REFRESH_TOKEN");
    assert!(body["error_description"].is_string());
    assert_eq!(read(fresh_access).await.status(), 401);
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn deny_redirects_with_access_denied_and_bad_client_id_is_refused() {
    let sb = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let base = sb.hubspot_url();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = client
        .post(format!("{base}/oauth/authorize"))
        .form(&[
            ("client_id", "sandbox-client-id"),
            ("redirect_uri", REDIRECT),
            ("state", "s1"),
            ("portal_id", "1001"),
            ("action", "deny"),
        ])
        .send()
        .await
        .unwrap();
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    assert!(location.contains("error=access_denied") && location.contains("state=s1"));
    let resp = client
        .get(format!(
            "{base}/oauth/authorize?client_id=other&redirect_uri={REDIRECT}"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    sb.hubspot().set_token_response_hub_id(false);
    let code = sb.hubspot().authorize(1001, REDIRECT, "s").unwrap();
    let (status, tokens) = exchange(&client, &base, &code).await;
    assert_eq!(status, 200);
    assert!(tokens.get("hub_id").is_none());
    sb.shutdown().await;
}
