//! Per-portal webhook secrets (`portals.hubspot_webhook_secret`): a private
//! app signs its webhooks with its own client secret. Set and removed here
//! (or by applying a portal document); read back only sealed, by ingest's
//! background refresh, never by a page or an API.

use domain::{events::PortalId, portal::HubSpotAuthKind};
use secrecy::{ExposeSecret, SecretString};
use sqlx::{PgPool, Row};

use super::portals::{PortalStoreError, notify, secret_context};
use crate::crypto::SecretCipher;

/// The column, and the associated data's name (`portal:{id}:hubspot_webhook_secret`).
pub const COLUMN: &str = "hubspot_webhook_secret";

/// Every stored secret, sealed, with its portal.
pub async fn sealed_all(pool: &PgPool) -> Result<Vec<(PortalId, Vec<u8>)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT portal_id, hubspot_webhook_secret FROM portals
         WHERE hubspot_webhook_secret IS NOT NULL",
    )
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|r| {
            let id: i64 = r.try_get(0)?;
            Ok((PortalId(u64::try_from(id).unwrap_or(0)), r.try_get(1)?))
        })
        .collect()
}

/// One portal's sealed secret (`None`: no such portal, or no secret).
pub async fn sealed_one(pool: &PgPool, portal: PortalId) -> Result<Option<Vec<u8>>, sqlx::Error> {
    let row: Option<Option<Vec<u8>>> =
        sqlx::query_scalar("SELECT hubspot_webhook_secret FROM portals WHERE portal_id = $1")
            .bind(portal.db_key())
            .fetch_optional(pool)
            .await?;
    Ok(row.flatten())
}

/// Opens a sealed secret of `portal`.
pub fn open(
    cipher: &SecretCipher,
    portal: PortalId,
    sealed: &[u8],
) -> Result<SecretString, crate::crypto::CryptoError> {
    cipher.decrypt(sealed, &secret_context(portal, COLUMN))
}

/// Sets (`Some`) or removes (`None`) a private-app portal's webhook secret,
/// with an audit entry (never the value) and a NOTIFY that ingest follows.
/// `Ok(false)`: no such portal; refused for an OAuth portal.
pub async fn set(
    pool: &PgPool,
    cipher: &SecretCipher,
    portal: PortalId,
    secret: Option<&SecretString>,
    actor: &str,
) -> Result<bool, PortalStoreError> {
    let id = portal.db_key();
    let mut tx = pool.begin().await?;
    let kind: Option<String> =
        sqlx::query_scalar("SELECT hubspot_auth_kind FROM portals WHERE portal_id = $1 FOR UPDATE")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
    let Some(kind) = kind else {
        return Ok(false);
    };
    if secret.is_some() && HubSpotAuthKind::parse(&kind) != Some(HubSpotAuthKind::PrivateApp) {
        return Err(PortalStoreError::Refused(
            "webhook_secret: only for a private app: this portal uses the OAuth (public) app, \
             whose webhooks are signed with CONNECTOR_HUBSPOT_CLIENT_SECRET"
                .into(),
        ));
    }
    let sealed = secret.map(|s| cipher.encrypt(s.expose_secret(), &secret_context(portal, COLUMN)));
    sqlx::query(
        "UPDATE portals SET hubspot_webhook_secret = $2, updated_at = now() WHERE portal_id = $1",
    )
    .bind(id)
    .bind(sealed)
    .execute(&mut *tx)
    .await?;
    let action = if secret.is_some() {
        "portal.webhook_secret.set"
    } else {
        "portal.webhook_secret.remove"
    };
    sqlx::query(
        "INSERT INTO audit_log (portal_id, actor, action, detail) VALUES ($1, $2, $3, '{}'::jsonb)",
    )
    .bind(id)
    .bind(actor)
    .bind(action)
    .execute(&mut *tx)
    .await?;
    notify(&mut tx, portal).await?;
    tx.commit().await?;
    Ok(true)
}
