//! A login through HubSpot (the OAuth install flow) and what it may change.
//!
//! - A new portal is created, active and unconfigured, on OAuth.
//! - An `uninstalled` portal (HubSpot revoked the grant) is resumed: the
//!   login is a reinstall.
//! - A `paused` portal stays paused: only an operator resumes it.
//! - A portal on a private-app token stays on it. The tokens the login
//!   granted are stored (encrypted, unused) so that an operator can switch
//!   explicitly (`"hubspot": {"auth_kind": "oauth"}` in an applied
//!   document) without another login.

use secrecy::{ExposeSecret, SecretString};
use sqlx::{PgPool, Row};

use super::{PortalStoreError, notify, secret_context};
use crate::crypto::SecretCipher;
use domain::{
    events::PortalId,
    portal::{HubSpotAuthKind, PortalStatus},
};

/// The tokens HubSpot granted an OAuth install.
#[derive(Debug, Clone, Copy)]
pub struct OAuthTokens<'a> {
    /// The access token.
    pub access_token: &'a SecretString,
    /// The refresh token (HubSpot sends one with every authorization code).
    pub refresh_token: Option<&'a SecretString>,
    /// Lifetime of the access token in seconds.
    pub expires_in: u64,
}

/// What a login through HubSpot did to the portal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OAuthLogin {
    /// The portal was created (a first install).
    pub created: bool,
    /// The portal was `uninstalled` and is active again (a reinstall).
    pub resumed: bool,
    /// The status after the login (`paused` stays `paused`).
    pub status: PortalStatus,
    /// How the connector authenticates to HubSpot after the login
    /// (`private_app` stays `private_app`).
    pub auth_kind: HubSpotAuthKind,
}

/// Stores OAuth tokens from the install flow (or a later login), as the
/// module says; audited and announced to the workers.
pub async fn store_oauth_tokens(
    pool: &PgPool,
    cipher: &SecretCipher,
    portal: PortalId,
    grant: OAuthTokens<'_>,
    actor: &str,
) -> Result<OAuthLogin, PortalStoreError> {
    let id = i64::try_from(portal.0)
        .map_err(|_| PortalStoreError::Refused("portal id too large".into()))?;
    let refresh = grant
        .refresh_token
        .ok_or_else(|| PortalStoreError::Refused("HubSpot returned no refresh token".into()))?;
    let enc = |s: &SecretString, column: &str| {
        cipher.encrypt(s.expose_secret(), &secret_context(portal, column))
    };
    let mut tx = pool.begin().await?;
    let before: Option<String> =
        sqlx::query_scalar("SELECT status FROM portals WHERE portal_id = $1 FOR UPDATE")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
    let row = sqlx::query(
        "INSERT INTO portals (portal_id, status, hubspot_auth_kind, hubspot_access_token,
             hubspot_refresh_token, hubspot_token_expires_at)
         VALUES ($1, 'active', 'oauth', $2, $3, now() + make_interval(secs => $4))
         ON CONFLICT (portal_id) DO UPDATE SET
             status = CASE WHEN portals.status = 'uninstalled' THEN 'active' ELSE portals.status END,
             hubspot_access_token = EXCLUDED.hubspot_access_token,
             hubspot_refresh_token = EXCLUDED.hubspot_refresh_token,
             hubspot_token_expires_at = EXCLUDED.hubspot_token_expires_at,
             hubspot_refreshing_until = NULL,
             updated_at = now()
         RETURNING status, hubspot_auth_kind",
    )
    .bind(id)
    .bind(enc(grant.access_token, "hubspot_access_token"))
    .bind(enc(refresh, "hubspot_refresh_token"))
    .bind(grant.expires_in as f64)
    .fetch_one(&mut *tx)
    .await?;
    let corrupt = |problem: &str| PortalStoreError::Corrupt {
        portal,
        problem: problem.into(),
    };
    let login = OAuthLogin {
        created: before.is_none(),
        resumed: before.as_deref() == Some("uninstalled"),
        status: PortalStatus::parse(row.get("status")).ok_or_else(|| corrupt("status"))?,
        auth_kind: HubSpotAuthKind::parse(row.get("hubspot_auth_kind"))
            .ok_or_else(|| corrupt("auth kind"))?,
    };
    sqlx::query(
        "INSERT INTO audit_log (portal_id, actor, action, detail) VALUES ($1, $2, 'portal.oauth_install', $3)",
    )
    .bind(id)
    .bind(actor)
    .bind(serde_json::json!({
        "created": login.created,
        "resumed": login.resumed,
        "status": login.status.as_str(),
        "auth_kind": login.auth_kind.as_str(),
    }))
    .execute(&mut *tx)
    .await?;
    notify(&mut tx, portal).await?;
    tx.commit().await?;
    Ok(login)
}
