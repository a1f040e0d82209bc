//! OAuth portals: tokens stored encrypted, refreshed before expiry, and an
//! uninstalled app (refresh answers `invalid_grant`) pauses the portal.

use crate::support::e2e::{KEY, PORTAL, WorkerEnv, seed_contact_mappings};
use domain::events::PortalId;
use secrecy::SecretString;
use serde_json::json;
use shared::{
    db,
    hubspot::{HubSpotClient, OAuthApp},
};
use worker::{EventResult, MessageOutcome};

fn done(outcome: MessageOutcome) -> Vec<EventResult> {
    match outcome {
        MessageOutcome::Done(r) => r,
        other => panic!("expected Done, got {other:?}"),
    }
}

async fn contact(env: &WorkerEnv) -> anyhow::Result<()> {
    env.sandbox.hubspot().create_contact(
        PORTAL,
        [
            ("lifecyclestage", "lead"),
            ("hs_lead_status", "NEW"),
            ("custom_impact_click_id", "oauth-click"),
        ],
    )?;
    Ok(())
}

async fn access_token_bytes(env: &WorkerEnv) -> anyhow::Result<Vec<u8>> {
    Ok(
        sqlx::query_scalar("SELECT hubspot_access_token FROM portals")
            .fetch_one(&env.pool)
            .await?,
    )
}

/// Makes the stored token look about to expire, so the worker refreshes it.
async fn expire(env: &WorkerEnv) -> anyhow::Result<()> {
    sqlx::query("UPDATE portals SET hubspot_token_expires_at = now()")
        .execute(&env.pool)
        .await?;
    env.worker.tokens.invalidate(PortalId(PORTAL)).await;
    Ok(())
}

#[tokio::test]
async fn oauth_tokens_are_refreshed_and_an_uninstall_pauses_the_portal() -> anyhow::Result<()> {
    let env = WorkerEnv::start().await?;
    // The install flow (a later issue) ends like this: code → tokens → stored.
    let hs = env.sandbox.hubspot();
    let redirect = "http://127.0.0.1/oauth/callback";
    let code = hs.authorize(PORTAL, redirect, "state")?;
    let client = HubSpotClient::new(reqwest::Client::new(), &env.sandbox.hubspot_url())?;
    let app = OAuthApp {
        client_id: "sandbox-client-id".into(),
        client_secret: SecretString::from("sandbox-client-secret"),
    };
    let grant = client.exchange_code(&app, &code, redirect).await?;
    let cipher = shared::crypto::SecretCipher::from_base64(KEY)?;
    let created = db::portals::store_oauth_tokens(
        &env.pool,
        &cipher,
        PortalId(PORTAL),
        grant.tokens(),
        "test",
    )
    .await?;
    assert!(created.created);

    // Installed but not configured yet: skipped.
    contact(&env).await?;
    assert_eq!(
        done(env.process(&env.new_events()).await),
        [EventResult::Skipped("portal_unconfigured")]
    );

    // The owner adds impact.com settings; no private-app token: OAuth stays.
    env.apply(json!({
        "hubspot": {},
        "triggers": { "contacts": { "on_create": true } },
        "mappings": { "contacts": seed_contact_mappings() }
    }))
    .await?;
    let exported = worker::cli::export(&env.pool, PortalId(PORTAL)).await?;
    assert_eq!(
        serde_json::to_value(&exported)?["hubspot"],
        json!({ "auth_kind": "oauth" })
    );
    contact(&env).await?;
    let results = done(env.process(&env.new_events()).await);
    assert!(
        matches!(results[0], EventResult::Delivered { .. }),
        "{results:?}"
    );

    // Near expiry, the token is refreshed (and stored) before the call.
    let before = access_token_bytes(&env).await?;
    hs.expire_access_tokens(PORTAL);
    expire(&env).await?;
    contact(&env).await?;
    let results = done(env.process(&env.new_events()).await);
    assert!(
        matches!(results[0], EventResult::Delivered { .. }),
        "{results:?}"
    );
    assert_ne!(access_token_bytes(&env).await?, before);

    // Uninstalled in HubSpot: the refresh fails, the portal is paused and
    // keeps its configuration.
    hs.uninstall(PORTAL)?;
    expire(&env).await?;
    contact(&env).await?;
    assert_eq!(
        done(env.process(&env.new_events()).await),
        [EventResult::Skipped("portal_uninstalled")]
    );
    let status: String = sqlx::query_scalar("SELECT status FROM portals")
        .fetch_one(&env.pool)
        .await?;
    assert_eq!(status, "uninstalled");
    let mappings: i64 = sqlx::query_scalar("SELECT count(*) FROM mappings")
        .fetch_one(&env.pool)
        .await?;
    assert_eq!(mappings, 9);
    contact(&env).await?;
    assert_eq!(
        done(env.process(&env.new_events()).await),
        [EventResult::Skipped("portal_uninstalled")]
    );
    assert_eq!(env.submissions().len(), 2);
    env.finish().await;
    Ok(())
}

/// HubSpot refuses an access token our database still holds for valid (it
/// was revoked or expired early): the worker refreshes it at once and the
/// event is delivered in the same pass, not after the retry ladder.
#[tokio::test]
async fn a_token_hubspot_refuses_before_its_expiry_is_refreshed_at_once() -> anyhow::Result<()> {
    let env = WorkerEnv::start().await?;
    let hs = env.sandbox.hubspot();
    let redirect = "http://127.0.0.1/oauth/callback";
    let code = hs.authorize(PORTAL, redirect, "state")?;
    let client = HubSpotClient::new(reqwest::Client::new(), &env.sandbox.hubspot_url())?;
    let app = OAuthApp {
        client_id: "sandbox-client-id".into(),
        client_secret: SecretString::from("sandbox-client-secret"),
    };
    let grant = client.exchange_code(&app, &code, redirect).await?;
    let cipher = shared::crypto::SecretCipher::from_base64(KEY)?;
    db::portals::store_oauth_tokens(&env.pool, &cipher, PortalId(PORTAL), grant.tokens(), "test")
        .await?;
    env.apply(json!({
        "hubspot": {},
        "triggers": { "contacts": { "on_create": true } },
        "mappings": { "contacts": seed_contact_mappings() }
    }))
    .await?;
    contact(&env).await?;
    let results = done(env.process(&env.new_events()).await);
    assert!(
        matches!(results[0], EventResult::Delivered { .. }),
        "{results:?}"
    );

    // The fake HubSpot no longer accepts the token; our stored expiry says
    // it has most of its life left.
    let before = access_token_bytes(&env).await?;
    hs.expire_access_tokens(PORTAL);
    contact(&env).await?;
    let results = done(env.process(&env.new_events()).await);
    assert!(
        matches!(results[0], EventResult::Delivered { .. }),
        "{results:?}"
    );
    assert_ne!(
        access_token_bytes(&env).await?,
        before,
        "refreshed and stored"
    );
    assert_eq!(env.submissions().len(), 2);
    env.finish().await;
    Ok(())
}
