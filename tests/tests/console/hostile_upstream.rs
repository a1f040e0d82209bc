//! The hostile-input catalogue, upstream side: a "HubSpot" or "impact.com"
//! that redirects the connector's calls elsewhere, answers with more than
//! any real answer holds, or pages associations without end; and a
//! database URL whose `sslmode` must be honoured.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use axum::{
    Json, Router,
    body::Body,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::{any, get},
};
use domain::object_type::ObjectType;
use secrecy::SecretString;
use serde_json::json;
use shared::{
    hubspot::{HubSpotClient, HubSpotError, MAX_ASSOCIATION_PAGES},
    impact::{ImpactClient, ImpactCredentials, ImpactError},
    upstream,
};

use crate::support::website::{PUBLIC_URL, WebEnv, website_settings};

/// Serves `router` on a loopback port; returns its URL.
async fn serve(router: Router) -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", l.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(l, router).await });
    url
}

/// A server counting every request it gets (where redirects point).
async fn collector() -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let url = serve(Router::new().fallback(any(move || {
        h.fetch_add(1, Ordering::SeqCst);
        async { "collected" }
    })))
    .await;
    (url, hits)
}

/// A server answering every request with a 302 to `to`.
async fn redirector(to: &str) -> String {
    let to = to.to_owned();
    serve(Router::new().fallback(any(move || {
        let to = to.clone();
        async move {
            (
                StatusCode::FOUND,
                [(header::LOCATION, format!("{to}/steal"))],
            )
                .into_response()
        }
    })))
    .await
}

fn token() -> SecretString {
    SecretString::from("pat-na1-test")
}

fn creds() -> ImpactCredentials {
    ImpactCredentials {
        account_sid: "IRsandbox".into(),
        auth_token: SecretString::from("sandbox-token"),
    }
}

fn client() -> reqwest::Client {
    upstream::client_builder().build().expect("client")
}

#[tokio::test]
async fn redirecting_upstreams_are_not_followed() -> anyhow::Result<()> {
    let (collect, hits) = collector().await;
    let evil = redirector(&collect).await;
    let hubspot = HubSpotClient::new(client(), &evil)?;
    let e = hubspot
        .batch_read(&token(), "deals", &[1], &[])
        .await
        .expect_err("refused");
    assert!(
        matches!(&e, HubSpotError::Rejected { status: 302, body } if body.contains("redirects are not followed")),
        "{e:?}"
    );
    let impact = ImpactClient::new(client(), &evil);
    let e = impact
        .submit_conversion(&creds(), &[("OrderId".into(), "1".into())])
        .await
        .expect_err("refused");
    assert!(
        matches!(&e, ImpactError::Rejected { status: 302, body } if body.contains("not followed")),
        "{e:?}"
    );
    // The console's own client: the OAuth code exchange.
    let w = WebEnv::start().await?;
    let mut s = website_settings(&w.env, PUBLIC_URL);
    s.hubspot_api_url = evil.clone();
    let app = console::app(console::AppState::from_settings(&s));
    let site = WebEnv {
        env: w.env,
        app,
        admin: w.admin,
    };
    let start = site.get("/oauth/start", None).await;
    let state = url::Url::parse(&start.location())?
        .query_pairs()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let cb = site
        .get(
            &format!("/oauth/callback?code=abc&state={state}"),
            start.cookie("connector_oauth_state").as_deref(),
        )
        .await;
    assert_eq!(cb.status, StatusCode::BAD_GATEWAY, "{}", cb.body);
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "nothing reached the Location"
    );
    site.finish().await;
    Ok(())
}

/// 11 MiB of JSON, with or without a `Content-Length`.
fn huge(declared: bool) -> Response {
    let mut body = b"{\"results\":[],\"pad\":\"".to_vec();
    body.extend(std::iter::repeat_n(b'x', 11 * 1024 * 1024));
    body.extend_from_slice(b"\"}");
    if declared {
        ([(header::CONTENT_TYPE, "application/json")], body).into_response()
    } else {
        let stream = futures::stream::iter(
            body.chunks(64 * 1024)
                .map(|c| Ok::<_, std::io::Error>(bytes::Bytes::copy_from_slice(c)))
                .collect::<Vec<_>>(),
        );
        Response::new(Body::from_stream(stream))
    }
}

#[tokio::test]
async fn oversized_upstream_answers_are_refused() -> anyhow::Result<()> {
    let url = serve(
        Router::new()
            .route(
                "/declared/crm/v3/objects/deals/batch/read",
                any(|| async { huge(true) }),
            )
            .route(
                "/chunked/crm/v3/objects/deals/batch/read",
                any(|| async { huge(false) }),
            )
            .route(
                "/declared/Advertisers/IRsandbox/Conversions",
                any(|| async { huge(true) }),
            )
            .route(
                "/chunked/Advertisers/IRsandbox/Campaigns/1",
                get(|| async { huge(false) }),
            ),
    )
    .await;
    for kind in ["declared", "chunked"] {
        let hubspot = HubSpotClient::new(client(), &format!("{url}/{kind}"))?;
        let e = hubspot
            .batch_read(&token(), "deals", &[1], &[])
            .await
            .expect_err("refused");
        assert!(
            matches!(&e, HubSpotError::TooLarge(m) if m.contains("larger than 10485760 bytes")),
            "{kind}: {e:?}"
        );
        // Permanent: retrying would read it again.
        assert_eq!(e.failure().class, domain::failure::FailureClass::Permanent);
    }
    let impact = ImpactClient::new(client(), &format!("{url}/declared"));
    let e = impact
        .submit_conversion(&creds(), &[("OrderId".into(), "1".into())])
        .await
        .expect_err("refused");
    assert!(e.to_string().contains("larger than 1048576 bytes"), "{e}");
    let impact = ImpactClient::new(client(), &format!("{url}/chunked"));
    let e = impact
        .check_program(&creds(), "1")
        .await
        .expect_err("refused");
    assert!(e.to_string().contains("larger than 10485760 bytes"), "{e}");
    Ok(())
}

#[tokio::test]
async fn endless_association_paging_stops_with_a_clear_error() -> anyhow::Result<()> {
    let pages = Arc::new(AtomicUsize::new(0));
    let p = pages.clone();
    let b = pages.clone();
    let url = serve(
        Router::new()
            // Every page empty, every page with a fresh cursor.
            .route(
                "/crm/v4/objects/deals/{id}/associations/line_items",
                get(move || {
                    let n = p.fetch_add(1, Ordering::SeqCst);
                    async move {
                        Json(json!({"results": [], "paging": {"next": {"after": format!("c{n}")}}}))
                    }
                }),
            )
            .route(
                "/crm/v4/associations/deals/line_items/batch/read",
                any(move || {
                    let n = b.fetch_add(1, Ordering::SeqCst);
                    async move {
                        Json(json!({"results": [{"from": {"id": "7"}, "to": [],
                            "paging": {"next": {"after": format!("b{n}")}}}]}))
                    }
                }),
            ),
    )
    .await;
    let hubspot = HubSpotClient::new(client(), &url)?;
    let e = hubspot
        .associations(&token(), ObjectType::Deals, 7, "line_items")
        .await
        .expect_err("bounded");
    assert!(
        matches!(&e, HubSpotError::TooLarge(m) if m.contains("deals 7") && m.contains("100 pages")),
        "{e:?}"
    );
    assert_eq!(pages.load(Ordering::SeqCst), MAX_ASSOCIATION_PAGES);
    pages.store(0, Ordering::SeqCst);
    let e = hubspot
        .batch_associations(&token(), ObjectType::Deals, "line_items", &[7])
        .await
        .expect_err("bounded");
    assert!(matches!(&e, HubSpotError::TooLarge(_)), "{e:?}");
    assert_eq!(pages.load(Ordering::SeqCst), MAX_ASSOCIATION_PAGES);
    Ok(())
}

/// Whether the connection `url` opens is encrypted (pg_stat_ssl).
async fn encrypted(url: &str) -> Result<bool, sqlx::Error> {
    let pool = shared::db::connect(url, 1).await?;
    let ssl: bool = sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(&pool)
        .await?;
    pool.close().await;
    Ok(ssl)
}

#[tokio::test]
async fn the_database_urls_sslmode_is_honoured() -> anyhow::Result<()> {
    let base = "postgres://postgres@127.0.0.1:5432/test";
    assert!(!encrypted(&format!("{base}?sslmode=disable")).await?);
    let server_tls: String = {
        let pool = shared::db::connect(base, 1).await?;
        sqlx::query_scalar("SHOW ssl").fetch_one(&pool).await?
    };
    let required = encrypted(&format!("{base}?sslmode=require")).await;
    if server_tls == "on" {
        // TLS is used, never plain text.
        assert!(required?, "sslmode=require connected in plain text");
        // The local server's certificate is self-signed: verifying it fails,
        // with an error that says so, rather than connecting anyway.
        let e = encrypted(&format!("{base}?sslmode=verify-full"))
            .await
            .expect_err("an untrusted certificate is refused");
        assert!(
            e.to_string().to_lowercase().contains("certificate")
                || e.to_string().to_lowercase().contains("tls"),
            "{e}"
        );
    } else {
        eprintln!("this PostgreSQL has ssl = off: checking that sslmode=require refuses it");
        let e = required.expect_err("no plain-text fallback");
        assert!(e.to_string().to_lowercase().contains("tls"), "{e}");
    }
    Ok(())
}
