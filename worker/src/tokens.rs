//! HubSpot access tokens: a private app's static token, or OAuth tokens
//! refreshed before expiry, once across all workers (row lock on the portal).

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use chrono::Utc;
use secrecy::{ExposeSecret, SecretString};
use shared::{
    db::{
        self,
        portals::{StoredPortal, secret_context},
    },
    events::PortalId,
    failure::Failure,
    hubspot::OAuthError,
    portal::HubSpotAuthKind,
};
use sqlx::Row;
use tokio::sync::Mutex;

use crate::Worker;

/// Refresh when less than this is left of a token's life.
const REFRESH_MARGIN: Duration = Duration::from_secs(300);

/// OAuth access tokens by portal, with their expiry.
#[derive(Default)]
pub struct TokenCache {
    entries: Mutex<HashMap<PortalId, (SecretString, Instant)>>,
}

impl TokenCache {
    /// Forgets a portal's token.
    pub async fn invalidate(&self, portal: PortalId) {
        self.entries.lock().await.remove(&portal);
    }
}

/// The bearer token for a portal's HubSpot calls.
pub async fn hubspot_token(
    w: &Worker,
    portal: PortalId,
    stored: &StoredPortal,
) -> Result<SecretString, Failure> {
    match stored.auth_kind {
        HubSpotAuthKind::PrivateApp => stored.hubspot_private_token.clone().ok_or_else(|| {
            Failure::permanent("portal_unconfigured", "no HubSpot private-app token stored")
        }),
        HubSpotAuthKind::Oauth => {
            if let Some((t, until)) = w.tokens.entries.lock().await.get(&portal)
                && *until > Instant::now() + REFRESH_MARGIN
            {
                return Ok(t.clone());
            }
            let (token, ttl) = oauth_token(w, portal).await?;
            w.tokens
                .entries
                .lock()
                .await
                .insert(portal, (token.clone(), Instant::now() + ttl));
            Ok(token)
        }
    }
}

/// Reads (and if needed refreshes) the stored OAuth token under a row lock,
/// so concurrent workers refresh once and all see the new token.
async fn oauth_token(w: &Worker, portal: PortalId) -> Result<(SecretString, Duration), Failure> {
    let db_err = |e: sqlx::Error| Failure::transient("database_unavailable", e.to_string());
    let id = i64::try_from(portal.0).unwrap_or(-1);
    let mut tx = w.pool.begin().await.map_err(db_err)?;
    let row = sqlx::query(
        "SELECT hubspot_access_token, hubspot_refresh_token, hubspot_token_expires_at
         FROM portals WHERE portal_id = $1 FOR UPDATE",
    )
    .bind(id)
    .fetch_one(&mut *tx)
    .await
    .map_err(db_err)?;
    let decrypt = |column: &str| -> Result<Option<SecretString>, Failure> {
        let bytes: Option<Vec<u8>> = row.get(column);
        bytes
            .map(|b| w.cipher.decrypt(&b, &secret_context(portal, column)))
            .transpose()
            .map_err(|e| Failure::permanent("secret_unreadable", e.to_string()))
    };
    let expires: Option<chrono::DateTime<Utc>> = row.get("hubspot_token_expires_at");
    let left = expires
        .map(|e| (e - Utc::now()).to_std().unwrap_or_default())
        .unwrap_or_default();
    if left > REFRESH_MARGIN
        && let Some(access) = decrypt("hubspot_access_token")?
    {
        return Ok((access, left));
    }
    let refresh = decrypt("hubspot_refresh_token")?.ok_or_else(|| {
        Failure::permanent("portal_unconfigured", "no OAuth refresh token stored")
    })?;
    let app = w.oauth_app.as_ref().ok_or_else(|| {
        Failure::permanent(
            "portal_unconfigured",
            "OAuth portal but CONNECTOR_HUBSPOT_CLIENT_ID/SECRET are not set",
        )
    })?;
    match w.hubspot.refresh_token(app, &refresh).await {
        Ok(grant) => {
            let enc = |s: &SecretString, column: &str| {
                w.cipher
                    .encrypt(s.expose_secret(), &secret_context(portal, column))
            };
            let new_refresh = grant.refresh_token.as_ref().unwrap_or(&refresh);
            let ttl = Duration::from_secs(grant.expires_in);
            sqlx::query(
                "UPDATE portals SET hubspot_access_token = $2, hubspot_refresh_token = $3,
                     hubspot_token_expires_at = now() + make_interval(secs => $4), updated_at = now()
                 WHERE portal_id = $1",
            )
            .bind(id)
            .bind(enc(&grant.access_token, "hubspot_access_token"))
            .bind(enc(new_refresh, "hubspot_refresh_token"))
            .bind(grant.expires_in as f64)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
            tx.commit().await.map_err(db_err)?;
            metrics::counter!("hubspot_token_refreshes_total", "outcome" => "ok").increment(1);
            Ok((grant.access_token, ttl))
        }
        Err(OAuthError::Revoked(detail)) => {
            // Uninstalled in HubSpot: pause the portal, keep its configuration.
            sqlx::query("UPDATE portals SET status = 'uninstalled', updated_at = now() WHERE portal_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            db::portals::notify(&mut tx, portal).await.map_err(db_err)?;
            tx.commit().await.map_err(db_err)?;
            w.portals.invalidate(portal).await;
            metrics::counter!("hubspot_token_refreshes_total", "outcome" => "revoked").increment(1);
            tracing::warn!(%portal, "HubSpot revoked the OAuth grant: portal marked uninstalled");
            Err(Failure::permanent("hubspot_uninstalled", detail))
        }
        Err(OAuthError::Api(e)) => {
            metrics::counter!("hubspot_token_refreshes_total", "outcome" => "error").increment(1);
            Err(e.failure())
        }
    }
}
