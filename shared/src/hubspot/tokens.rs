//! A portal's OAuth access token, refreshed when it is about to expire, once
//! across all processes: the refresh is made while the portal's row is
//! locked (`crate::db::tokens::lock`), so concurrent workers wait and then
//! see the new token. Used by the worker and the website; an
//! `invalid_grant` refresh marks the portal `uninstalled`.

use std::time::Duration;

use chrono::Utc;
use secrecy::{ExposeSecret, SecretString};
use sqlx::PgPool;

use super::{HubSpotClient, HubSpotError, OAuthApp, OAuthError};
use crate::{
    crypto::SecretCipher,
    db::{portals::secret_context, tokens},
};
use domain::events::PortalId;

/// Refresh when less than this is left of a token's life.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(300);

/// Why no access token could be had.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The database failed.
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    /// A stored token cannot be decrypted.
    #[error("stored token unreadable: {0}")]
    Unreadable(String),
    /// Nothing to refresh with, or no app credentials configured.
    #[error("{0}")]
    Unconfigured(&'static str),
    /// HubSpot refused the refresh: the app was uninstalled. The portal is
    /// now marked `uninstalled` (configuration kept).
    #[error("HubSpot refused the token refresh (app uninstalled): {0}")]
    Revoked(String),
    /// Any other HubSpot failure.
    #[error(transparent)]
    Api(#[from] HubSpotError),
}

/// Reads (and if needed refreshes) the stored OAuth access token. Returns
/// the token, how long it stays valid, and whether it was just refreshed.
/// `rejected`: a token HubSpot refused (401), refreshed whatever its stored
/// expiry says; a concurrent process that refreshed it already left a
/// different one, which is used as is.
pub async fn oauth_access_token(
    pool: &PgPool,
    cipher: &SecretCipher,
    hubspot: &HubSpotClient,
    app: Option<&OAuthApp>,
    portal: PortalId,
    rejected: Option<&SecretString>,
) -> Result<(SecretString, Duration, bool), TokenError> {
    let mut tx = pool.begin().await?;
    let stored = tokens::lock(&mut tx, portal).await?;
    let decrypt = |sealed: &Option<Vec<u8>>, column: &str| {
        sealed
            .as_ref()
            .map(|b| cipher.decrypt(b, &secret_context(portal, column)))
            .transpose()
            .map_err(|e| TokenError::Unreadable(e.to_string()))
    };
    let left = stored
        .expires_at
        .map(|e| (e - Utc::now()).to_std().unwrap_or_default())
        .unwrap_or_default();
    if left > REFRESH_MARGIN
        && let Some(access) = decrypt(&stored.access, "hubspot_access_token")?
        && rejected.is_none_or(|r| r.expose_secret() != access.expose_secret())
    {
        return Ok((access, left, false));
    }
    let refresh = decrypt(&stored.refresh, "hubspot_refresh_token")?
        .ok_or(TokenError::Unconfigured("no OAuth refresh token stored"))?;
    let app = app.ok_or(TokenError::Unconfigured(
        "OAuth portal but CONNECTOR_HUBSPOT_CLIENT_ID/SECRET are not set",
    ))?;
    match hubspot.refresh_token(app, &refresh).await {
        Ok(grant) => {
            let seal = |s: &SecretString, column: &str| {
                cipher.encrypt(s.expose_secret(), &secret_context(portal, column))
            };
            let access = seal(&grant.access_token, "hubspot_access_token");
            let new_refresh = seal(
                grant.refresh_token.as_ref().unwrap_or(&refresh),
                "hubspot_refresh_token",
            );
            tokens::store_refreshed(&mut tx, portal, &access, &new_refresh, grant.expires_in)
                .await?;
            tx.commit().await?;
            let ttl = Duration::from_secs(grant.expires_in);
            Ok((grant.access_token, ttl, true))
        }
        Err(OAuthError::Revoked(detail)) => {
            tokens::mark_uninstalled(&mut tx, portal).await?;
            tx.commit().await?;
            Err(TokenError::Revoked(detail))
        }
        Err(OAuthError::Api(e)) => Err(TokenError::Api(e)),
    }
}
