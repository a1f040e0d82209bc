//! A portal's stored OAuth tokens and the lease of their refresh. No
//! statement here holds a lock past its own end: the refresh (an HTTP call,
//! `crate::hubspot::tokens`) runs between [`claim`] and [`store_refreshed`]
//! with no transaction open, and every write compares the sealed refresh
//! token it read (compare and set), so a refresh token that changed
//! meanwhile (a login, a rotated token stored by another process) is never
//! overwritten with an older one.

use chrono::{DateTime, Utc};
use sqlx::{PgPool, Postgres, Row, Transaction};

use super::portals::notify;
use domain::events::PortalId;

/// A portal's sealed OAuth tokens and the access token's expiry.
#[derive(Debug, Clone, Default)]
pub struct SealedTokens {
    /// The access token, sealed.
    pub access: Option<Vec<u8>>,
    /// The refresh token, sealed.
    pub refresh: Option<Vec<u8>>,
    /// When the access token expires.
    pub expires_at: Option<DateTime<Utc>>,
    /// Whether another process holds the refresh lease now.
    pub refreshing: bool,
}

/// Reads the portal's tokens (no lock).
pub async fn read(pool: &PgPool, portal: PortalId) -> Result<SealedTokens, sqlx::Error> {
    let row = sqlx::query(
        "SELECT hubspot_access_token, hubspot_refresh_token, hubspot_token_expires_at,
             COALESCE(hubspot_refreshing_until > now(), false) AS refreshing
         FROM portals WHERE portal_id = $1",
    )
    .bind(portal.db_key())
    .fetch_one(pool)
    .await?;
    Ok(SealedTokens {
        access: row.try_get("hubspot_access_token")?,
        refresh: row.try_get("hubspot_refresh_token")?,
        expires_at: row.try_get("hubspot_token_expires_at")?,
        refreshing: row.try_get("refreshing")?,
    })
}

/// Takes the refresh lease for `lease_secs` if nobody holds it and the
/// refresh token is still `seen`. True: this process refreshes.
pub async fn claim(
    pool: &PgPool,
    portal: PortalId,
    seen: &[u8],
    lease_secs: u64,
) -> Result<bool, sqlx::Error> {
    let n = sqlx::query(
        "UPDATE portals SET hubspot_refreshing_until = now() + make_interval(secs => $3)
         WHERE portal_id = $1 AND hubspot_refresh_token = $2
           AND (hubspot_refreshing_until IS NULL OR hubspot_refreshing_until <= now())",
    )
    .bind(portal.db_key())
    .bind(seen)
    .bind(lease_secs as f64)
    .execute(pool)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Gives the lease back without a new token (the refresh failed).
pub async fn release(pool: &PgPool, portal: PortalId, seen: &[u8]) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE portals SET hubspot_refreshing_until = NULL
         WHERE portal_id = $1 AND hubspot_refresh_token = $2",
    )
    .bind(portal.db_key())
    .bind(seen)
    .execute(pool)
    .await?;
    Ok(())
}

/// Stores refreshed tokens (sealed), the access token valid
/// `expires_in_secs`, and ends the lease, if the refresh token is still
/// `seen`. False: it changed meanwhile (kept).
pub async fn store_refreshed(
    pool: &PgPool,
    portal: PortalId,
    seen: &[u8],
    access: &[u8],
    refresh: &[u8],
    expires_in_secs: u64,
) -> Result<bool, sqlx::Error> {
    let n = sqlx::query(
        "UPDATE portals SET hubspot_access_token = $3, hubspot_refresh_token = $4,
             hubspot_token_expires_at = now() + make_interval(secs => $5),
             hubspot_refreshing_until = NULL, updated_at = now()
         WHERE portal_id = $1 AND hubspot_refresh_token = $2",
    )
    .bind(portal.db_key())
    .bind(seen)
    .bind(access)
    .bind(refresh)
    .bind(expires_in_secs as f64)
    .execute(pool)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Uninstalled in HubSpot (the refresh token `seen` was refused): the
/// portal is marked `uninstalled` (configuration kept; a portal an
/// operator paused stays `paused`, so that a reinstall does not resume it)
/// and the change announced. False: the refresh token changed meanwhile
/// (a login stored a new one), nothing marked.
pub async fn mark_uninstalled(
    pool: &PgPool,
    portal: PortalId,
    seen: &[u8],
) -> Result<bool, sqlx::Error> {
    let mut tx: Transaction<'_, Postgres> = pool.begin().await?;
    let n = sqlx::query(
        "UPDATE portals SET hubspot_refreshing_until = NULL, updated_at = now(),
             status = CASE WHEN status = 'paused' THEN 'paused' ELSE 'uninstalled' END
         WHERE portal_id = $1 AND hubspot_refresh_token = $2",
    )
    .bind(portal.db_key())
    .bind(seen)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if n == 1 {
        notify(&mut tx, portal).await?;
    }
    tx.commit().await?;
    Ok(n == 1)
}
