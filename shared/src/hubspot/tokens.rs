//! A portal's OAuth access token, refreshed when it is about to expire, once
//! across all processes, with no database transaction open during the call
//! to HubSpot: the process that takes the refresh lease
//! (`crate::db::tokens::claim`, a compare-and-set on the portal's row)
//! refreshes; the others poll the row until the new token is stored (or
//! the lease expires and one of them takes it over). Every write compares
//! the refresh token it started from, so a refresh token HubSpot rotated is
//! never lost to a slower, older refresh. Used by the worker and the
//! website; an `invalid_grant` refresh marks the portal `uninstalled`.

use std::time::{Duration, Instant};

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

/// How long a refresh lease lasts: longer than any HTTP client's timeout
/// (the worker's 20 s, the website's 15 s), so a lease expires only when
/// its process died mid-refresh.
pub const REFRESH_LEASE: Duration = Duration::from_secs(60);

/// How often a process waiting for another's refresh reads the row again.
const POLL: Duration = Duration::from_millis(100);

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
    /// Another process's refresh did not finish in time (transient).
    #[error("another process is refreshing the HubSpot token; try again")]
    Busy,
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
    let decrypt = |sealed: &Option<Vec<u8>>, column: &str| {
        sealed
            .as_ref()
            .map(|b| cipher.decrypt(b, &secret_context(portal, column)))
            .transpose()
            .map_err(|e| TokenError::Unreadable(e.to_string()))
    };
    let deadline = Instant::now() + REFRESH_LEASE + Duration::from_secs(5);
    loop {
        let stored = tokens::read(pool, portal).await?;
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
        let seen = stored
            .refresh
            .clone()
            .ok_or(TokenError::Unconfigured("no OAuth refresh token stored"))?;
        if !stored.refreshing && tokens::claim(pool, portal, &seen, REFRESH_LEASE.as_secs()).await?
        {
            let lease = Lease::new(pool, portal, seen);
            let refresh = decrypt(&stored.refresh, "hubspot_refresh_token")?
                .ok_or(TokenError::Unconfigured("no OAuth refresh token stored"))?;
            match refresh_leased(pool, cipher, hubspot, app, lease, &refresh).await? {
                Some(done) => return Ok(done),
                // The refresh token changed under a slow refresh: start over.
                None => continue,
            }
        }
        if Instant::now() >= deadline {
            return Err(TokenError::Busy);
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Refreshes with the lease held (no transaction open); `None`: HubSpot
/// refused a refresh token that is no longer the stored one.
async fn refresh_leased(
    pool: &PgPool,
    cipher: &SecretCipher,
    hubspot: &HubSpotClient,
    app: Option<&OAuthApp>,
    mut lease: Lease,
    refresh: &SecretString,
) -> Result<Option<(SecretString, Duration, bool)>, TokenError> {
    let portal = lease.portal;
    let Some(app) = app else {
        lease.release().await?;
        return Err(TokenError::Unconfigured(
            "OAuth portal but CONNECTOR_HUBSPOT_CLIENT_ID/SECRET are not set",
        ));
    };
    match hubspot.refresh_token(app, refresh).await {
        Ok(grant) => {
            let seal = |s: &SecretString, column: &str| {
                cipher.encrypt(s.expose_secret(), &secret_context(portal, column))
            };
            let access = seal(&grant.access_token, "hubspot_access_token");
            let new_refresh = seal(
                grant.refresh_token.as_ref().unwrap_or(refresh),
                "hubspot_refresh_token",
            );
            let seen = lease.done();
            // False: a login stored other tokens meanwhile; they stay, and
            // this fresh access token is still good for this call.
            tokens::store_refreshed(pool, portal, &seen, &access, &new_refresh, grant.expires_in)
                .await?;
            let ttl = Duration::from_secs(grant.expires_in);
            Ok(Some((grant.access_token, ttl, true)))
        }
        Err(OAuthError::Revoked(detail)) => {
            let seen = lease.done();
            if tokens::mark_uninstalled(pool, portal, &seen).await? {
                Err(TokenError::Revoked(detail))
            } else {
                Ok(None)
            }
        }
        Err(OAuthError::Api(e)) => {
            lease.release().await?;
            Err(TokenError::Api(e))
        }
    }
}

/// A held refresh lease: given back when dropped unfinished (a cancelled
/// request), so that waiting processes do not wait for its expiry.
struct Lease {
    pool: PgPool,
    portal: PortalId,
    seen: Option<SealedRefresh>,
}

type SealedRefresh = Vec<u8>;

impl Lease {
    fn new(pool: &PgPool, portal: PortalId, seen: SealedRefresh) -> Self {
        Self {
            pool: pool.clone(),
            portal,
            seen: Some(seen),
        }
    }

    /// The refresh token the lease was taken with; the lease is the
    /// caller's to end now.
    fn done(&mut self) -> SealedRefresh {
        self.seen.take().unwrap_or_default()
    }

    async fn release(&mut self) -> Result<(), sqlx::Error> {
        let seen = self.done();
        tokens::release(&self.pool, self.portal, &seen).await
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(seen) = self.seen.take()
            && let Ok(rt) = tokio::runtime::Handle::try_current()
        {
            let (pool, portal) = (self.pool.clone(), self.portal);
            rt.spawn(async move {
                let _ = tokens::release(&pool, portal, &seen).await;
            });
        }
    }
}
