//! A slow HubSpot token refresh (issue 20, item 8) holds no database
//! transaction open while HubSpot answers, and concurrent refreshes make
//! one call without losing a refresh token HubSpot rotates.

use std::time::Duration;

use crate::support::website::{Auth, WebEnv};
use axum::http::{Method, StatusCode};

const P1: u64 = 1001;

async fn status(w: &WebEnv, portal: u64) -> anyhow::Result<String> {
    Ok(
        sqlx::query_scalar("SELECT status FROM portals WHERE portal_id = $1")
            .bind(portal as i64)
            .fetch_one(&w.env.pool)
            .await?,
    )
}

/// Connections of this test's database that are inside a transaction but
/// waiting for the client (`idle in transaction`).
async fn idle_in_transaction(pool: &sqlx::PgPool) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity
         WHERE datname = current_database() AND state LIKE 'idle in transaction%'",
    )
    .fetch_one(pool)
    .await?)
}

#[tokio::test]
async fn slow_token_refreshes_hold_no_transaction_and_refresh_once() -> anyhow::Result<()> {
    let w = WebEnv::start().await?;
    let owner = w.install(P1).await?;
    let hs = w.env.sandbox.hubspot();
    hs.set_rotate_refresh_tokens(true);
    hs.set_token_latency(Duration::from_millis(1500));
    let expire = || async {
        hs.expire_access_tokens(P1);
        sqlx::query("UPDATE portals SET hubspot_token_expires_at = now() WHERE portal_id = $1")
            .bind(P1 as i64)
            .execute(&w.env.pool)
            .await
            .map(|_| ())
    };
    expire().await?;
    let before = hs.token_refreshes();
    // Five concurrent property loads (nothing cached: each needs a token).
    let load = |ty: &'static str| {
        let owner = owner.clone();
        let w = &w;
        async move {
            w.api(
                Method::GET,
                &format!("/api/v1/portals/{P1}/properties/{ty}"),
                Auth::Session(&owner),
                None,
            )
            .await
        }
    };
    let loads = futures::future::join_all([
        load("contacts"),
        load("companies"),
        load("deals"),
        load("contacts"),
        load("deals"),
    ]);
    let watch = async {
        let mut seen = 0;
        for _ in 0..10 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            seen = seen.max(idle_in_transaction(&w.env.pool).await?);
        }
        anyhow::Ok(seen)
    };
    let (answers, seen) = tokio::join!(loads, watch);
    assert_eq!(
        seen?, 0,
        "a transaction was open during the call to HubSpot"
    );
    for a in &answers {
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    }
    assert_eq!(
        hs.token_refreshes() - before,
        1,
        "one refresh for five requests"
    );
    // The rotated refresh token was kept: the next refresh works.
    hs.set_token_latency(Duration::ZERO);
    expire().await?;
    let a = w
        .api(
            Method::GET,
            &format!("/api/v1/portals/{P1}/properties/deals?refresh=true"),
            Auth::Session(&owner),
            None,
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(hs.token_refreshes() - before, 2);
    assert_eq!(status(&w, P1).await?, "active", "not marked uninstalled");
    w.finish().await;
    Ok(())
}
