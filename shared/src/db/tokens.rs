//! A portal's OAuth access token, refreshed when it is about to expire, once
//! across all processes (row lock on the portal). Used by the worker and the
//! website; an `invalid_grant` refresh marks the portal `uninstalled`.

use std::time::Duration;

use chrono::Utc;
use secrecy::{ExposeSecret, SecretString};
use sqlx::{PgPool, Row};

use super::portals::{notify, secret_context};
use crate::{
    crypto::SecretCipher,
    hubspot::{HubSpotClient, HubSpotError, OAuthApp, OAuthError},
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
pub async fn oauth_access_token(
    pool: &PgPool,
    cipher: &SecretCipher,
    hubspot: &HubSpotClient,
    app: Option<&OAuthApp>,
    portal: PortalId,
    rejected: Option<&SecretString>,
) -> Result<(SecretString, Duration, bool), TokenError> {
    let id = portal.db_key();
    let mut tx = pool.begin().await?;
    let row = sqlx::query(
        "SELECT hubspot_access_token, hubspot_refresh_token, hubspot_token_expires_at
         FROM portals WHERE portal_id = $1 FOR UPDATE",
    )
    .bind(id)
    .fetch_one(&mut *tx)
    .await?;
    let decrypt = |column: &str| -> Result<Option<SecretString>, TokenError> {
        let bytes: Option<Vec<u8>> = row.get(column);
        bytes
            .map(|b| cipher.decrypt(&b, &secret_context(portal, column)))
            .transpose()
            .map_err(|e| TokenError::Unreadable(e.to_string()))
    };
    let expires: Option<chrono::DateTime<Utc>> = row.get("hubspot_token_expires_at");
    let left = expires
        .map(|e| (e - Utc::now()).to_std().unwrap_or_default())
        .unwrap_or_default();
    // A token HubSpot refused (401) is refreshed whatever its stored expiry
    // says; a concurrent worker that refreshed it already left a different
    // one, which is used as is.
    if left > REFRESH_MARGIN
        && let Some(access) = decrypt("hubspot_access_token")?
        && rejected.is_none_or(|r| r.expose_secret() != access.expose_secret())
    {
        return Ok((access, left, false));
    }
    let refresh = decrypt("hubspot_refresh_token")?
        .ok_or(TokenError::Unconfigured("no OAuth refresh token stored"))?;
    let app = app.ok_or(TokenError::Unconfigured(
        "OAuth portal but CONNECTOR_HUBSPOT_CLIENT_ID/SECRET are not set",
    ))?;
    match hubspot.refresh_token(app, &refresh).await {
        Ok(grant) => {
            let enc = |s: &SecretString, column: &str| {
                cipher.encrypt(s.expose_secret(), &secret_context(portal, column))
            };
            let new_refresh = grant.refresh_token.as_ref().unwrap_or(&refresh);
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
            .await?;
            tx.commit().await?;
            Ok((
                grant.access_token,
                Duration::from_secs(grant.expires_in),
                true,
            ))
        }
        Err(OAuthError::Revoked(detail)) => {
            // Uninstalled in HubSpot: pause the portal, keep its configuration.
            sqlx::query(
                "UPDATE portals SET status = 'uninstalled', updated_at = now() WHERE portal_id = $1",
            )
            .bind(id)
            .execute(&mut *tx)
            .await?;
            notify(&mut tx, portal).await?;
            tx.commit().await?;
            Err(TokenError::Revoked(detail))
        }
        Err(OAuthError::Api(e)) => Err(TokenError::Api(e)),
    }
}
