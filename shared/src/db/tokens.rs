//! A portal's stored OAuth tokens: read under a row lock, replaced after a
//! refresh, and the portal marked `uninstalled` when HubSpot refuses the
//! refresh. Plain SQL; the refresh itself (an HTTP call made while the row
//! is locked, so processes refresh once) is `crate::hubspot::tokens`.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, Postgres, Row, Transaction};

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
}

/// Reads the portal's tokens and locks its row until the transaction ends.
pub async fn lock(db: &mut PgConnection, portal: PortalId) -> Result<SealedTokens, sqlx::Error> {
    let row = sqlx::query(
        "SELECT hubspot_access_token, hubspot_refresh_token, hubspot_token_expires_at
         FROM portals WHERE portal_id = $1 FOR UPDATE",
    )
    .bind(portal.db_key())
    .fetch_one(db)
    .await?;
    Ok(SealedTokens {
        access: row.try_get("hubspot_access_token")?,
        refresh: row.try_get("hubspot_refresh_token")?,
        expires_at: row.try_get("hubspot_token_expires_at")?,
    })
}

/// Stores refreshed tokens (sealed), the access token valid `expires_in_secs`.
pub async fn store_refreshed(
    db: &mut PgConnection,
    portal: PortalId,
    access: &[u8],
    refresh: &[u8],
    expires_in_secs: u64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE portals SET hubspot_access_token = $2, hubspot_refresh_token = $3,
             hubspot_token_expires_at = now() + make_interval(secs => $4), updated_at = now()
         WHERE portal_id = $1",
    )
    .bind(portal.db_key())
    .bind(access)
    .bind(refresh)
    .bind(expires_in_secs as f64)
    .execute(db)
    .await?;
    Ok(())
}

/// Uninstalled in HubSpot: pauses the portal (`uninstalled`), keeping its
/// configuration, and announces the change.
pub async fn mark_uninstalled(
    tx: &mut Transaction<'_, Postgres>,
    portal: PortalId,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE portals SET status = 'uninstalled', updated_at = now() WHERE portal_id = $1",
    )
    .bind(portal.db_key())
    .execute(&mut **tx)
    .await?;
    notify(tx, portal).await
}
