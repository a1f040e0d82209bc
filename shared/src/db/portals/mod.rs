//! The `portals`, `triggers`, `trigger_properties` and `mappings` tables:
//! applying a validated document, and reading a portal back.

use domain::status::CredentialsStatus;
use secrecy::{ExposeSecret, SecretString};
use sqlx::{PgPool, Postgres, Row, Transaction};

use crate::crypto::{CryptoError, SecretCipher};
use domain::{
    events::PortalId,
    mapping::{MappingSet, Source},
    portal::{HubSpotAuthKind, SecretUpdate, StoredCredentials, Validated},
    triggers::TriggerSet,
};

/// A database or decryption problem while reading or writing a portal.
#[derive(Debug, thiserror::Error)]
pub enum PortalStoreError {
    /// The database failed.
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    /// A stored secret could not be decrypted.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// A document cannot be applied in the current state.
    #[error("{0}")]
    Refused(String),
    /// The document was changed since the version the edit started from.
    #[error("the configuration changed since version {expected} (now version {current})")]
    Stale {
        /// The version the edit was based on.
        expected: i64,
        /// The current version.
        current: i64,
    },
    /// A stored row no longer parses (schema drift).
    #[error("stored configuration of portal {portal} is corrupt: {problem}")]
    Corrupt {
        /// The portal.
        portal: PortalId,
        /// What does not parse.
        problem: String,
    },
}

/// Associated data binding a secret to its portal and column.
pub fn secret_context(portal: PortalId, column: &str) -> String {
    format!("portal:{portal}:{column}")
}

/// Creates or replaces a portal's configuration (one transaction), records
/// it in the audit log and notifies workers. Returns true when created.
/// The document's status applies: an operator's `worker portal apply`.
pub async fn apply(
    pool: &PgPool,
    cipher: &SecretCipher,
    doc: &Validated,
    actor: &str,
) -> Result<bool, PortalStoreError> {
    apply_with(pool, cipher, doc, actor, None, false).await
}

/// [`apply`] for the portal's owner (website, JSON API), only when the
/// configuration is still at `version` (`None`: whatever it is; every
/// applied change raises the version): the stored status stays whatever
/// the document says, so an owner's save never resumes a portal an
/// operator paused (not even one racing the pause).
pub async fn apply_keeping_status(
    pool: &PgPool,
    cipher: &SecretCipher,
    doc: &Validated,
    actor: &str,
    version: Option<i64>,
) -> Result<bool, PortalStoreError> {
    apply_with(pool, cipher, doc, actor, version, true).await
}

async fn apply_with(
    pool: &PgPool,
    cipher: &SecretCipher,
    doc: &Validated,
    actor: &str,
    version: Option<i64>,
    keep_status: bool,
) -> Result<bool, PortalStoreError> {
    let c = &doc.config;
    let id = i64::try_from(c.portal_id.0)
        .map_err(|_| PortalStoreError::Refused("portal_id too large".into()))?;
    let mut tx = pool.begin().await?;
    let existing = sqlx::query(
        "SELECT hubspot_auth_kind, impact_auth_token IS NOT NULL AS has_impact,
             hubspot_private_token IS NOT NULL AS has_private,
             hubspot_refresh_token IS NOT NULL AS has_oauth, config_version
         FROM portals WHERE portal_id = $1 FOR UPDATE",
    )
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    let current = existing
        .as_ref()
        .map_or(0, |r| r.get::<i64, _>("config_version"));
    if let Some(expected) = version.filter(|v| *v != current) {
        return Err(PortalStoreError::Stale { expected, current });
    }
    let created = existing.is_none();
    let stored = existing.as_ref().and_then(|r| {
        Some(StoredCredentials {
            hubspot: HubSpotAuthKind::parse(r.get::<&str, _>("hubspot_auth_kind"))?,
            impact_token: r.get::<bool, _>("has_impact"),
            private_token: r.get::<bool, _>("has_private"),
            oauth_tokens: r.get::<bool, _>("has_oauth"),
        })
    });
    let kind = doc
        .credentials_over(stored)
        .map_err(PortalStoreError::Refused)?;
    let token = doc.secrets.hubspot_private_token.as_ref();
    let enc = |s: Option<&SecretString>, column: &str| {
        s.map(|s| cipher.encrypt(s.expose_secret(), &secret_context(c.portal_id, column)))
    };
    // A portal on OAuth (e.g. one switched explicitly) has its webhooks
    // signed by the public app: a private app's secret is dropped.
    let (webhook_secret, keep_webhook_secret) = match &doc.secrets.hubspot_webhook_secret {
        _ if kind == HubSpotAuthKind::Oauth => (None, false),
        SecretUpdate::Keep => (None, true),
        SecretUpdate::Set(s) => (enc(Some(s), "hubspot_webhook_secret"), false),
        SecretUpdate::Clear => (None, false),
    };
    sqlx::query(
        "INSERT INTO portals (portal_id, status, hubspot_auth_kind, hubspot_private_token,
             impact_account_sid, impact_auth_token, impact_program_id, hubspot_webhook_secret,
             paused_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, CASE WHEN $2 = 'paused' THEN now() END)
         ON CONFLICT (portal_id) DO UPDATE SET
             status = CASE WHEN $10 THEN portals.status ELSE EXCLUDED.status END,
             -- Paused since the first document that paused it.
             paused_at = CASE WHEN $10 THEN portals.paused_at
                 WHEN EXCLUDED.status <> 'paused' THEN NULL
                 WHEN portals.status = 'paused' THEN COALESCE(portals.paused_at, now())
                 ELSE now() END,
             hubspot_auth_kind = EXCLUDED.hubspot_auth_kind,
             hubspot_private_token = COALESCE(EXCLUDED.hubspot_private_token, portals.hubspot_private_token),
             hubspot_webhook_secret = CASE WHEN $9 THEN portals.hubspot_webhook_secret
                 ELSE EXCLUDED.hubspot_webhook_secret END,
             impact_account_sid = EXCLUDED.impact_account_sid,
             impact_auth_token = COALESCE(EXCLUDED.impact_auth_token, portals.impact_auth_token),
             impact_program_id = EXCLUDED.impact_program_id,
             credentials_status = CASE WHEN EXCLUDED.impact_auth_token IS NULL
                 AND portals.impact_account_sid = EXCLUDED.impact_account_sid
                 THEN portals.credentials_status ELSE 'unknown' END,
             config_version = portals.config_version + 1,
             updated_at = now()",
    )
    .bind(id)
    .bind(c.status.as_str())
    .bind(kind.as_str())
    .bind(enc(token, "hubspot_private_token"))
    .bind(&c.impact_account_sid)
    .bind(enc(doc.secrets.impact_auth_token.as_ref(), "impact_auth_token"))
    .bind(&c.impact_program_id)
    .bind(webhook_secret)
    .bind(keep_webhook_secret)
    .bind(keep_status)
    .execute(&mut *tx)
    .await?;
    replace_rules(&mut tx, id, &c.triggers, &c.mappings).await?;
    replace_adjustments(&mut tx, id, &c.adjustments).await?;
    let detail = serde_json::json!({ "created": created, "warnings": doc.warnings });
    sqlx::query("INSERT INTO audit_log (portal_id, actor, action, detail) VALUES ($1, $2, 'portal.apply', $3)")
        .bind(id)
        .bind(actor)
        .bind(detail)
        .execute(&mut *tx)
        .await?;
    notify(&mut tx, c.portal_id).await?;
    tx.commit().await?;
    Ok(created)
}

/// Announces a configuration change to every worker (delivered on commit).
pub async fn notify(
    tx: &mut Transaction<'_, Postgres>,
    portal: PortalId,
) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(super::CONFIG_CHANNEL)
        .bind(portal.to_string())
        .execute(&mut **tx)
        .await
        .map(|_| ())
}

async fn replace_rules(
    tx: &mut Transaction<'_, Postgres>,
    id: i64,
    triggers: &TriggerSet,
    mappings: &MappingSet,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM triggers WHERE portal_id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await?;
    sqlx::query("DELETE FROM mappings WHERE portal_id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await?;
    for (ty, t) in triggers {
        sqlx::query("INSERT INTO triggers (portal_id, object_type, on_create) VALUES ($1, $2, $3)")
            .bind(id)
            .bind(ty.as_str())
            .bind(t.on_create)
            .execute(&mut **tx)
            .await?;
        for (pos, p) in t.on_change.iter().enumerate() {
            sqlx::query("INSERT INTO trigger_properties (portal_id, object_type, position, property, only_values) VALUES ($1, $2, $3, $4, $5)")
                .bind(id)
                .bind(ty.as_str())
                .bind(pos as i32)
                .bind(&p.property)
                .bind(p.only_values.as_ref().map(|v| serde_json::json!(v)))
                .execute(&mut **tx)
                .await?;
        }
    }
    for (ty, rows) in mappings {
        for (pos, m) in rows.iter().enumerate() {
            let constant = match &m.source {
                Source::Const(c) => Some(c.clone()),
                _ => None,
            };
            sqlx::query("INSERT INTO mappings (portal_id, object_type, position, source_from, source_const, target, value_map) VALUES ($1, $2, $3, $4, $5, $6, $7)")
                .bind(id)
                .bind(ty.as_str())
                .bind(pos as i32)
                .bind(m.source.display_from())
                .bind(constant)
                .bind(m.target.display())
                .bind(m.value_map.as_ref().map(|v| serde_json::json!(v)))
                .execute(&mut **tx)
                .await?;
        }
    }
    Ok(())
}

async fn replace_adjustments(
    tx: &mut Transaction<'_, Postgres>,
    id: i64,
    adjustments: &domain::adjustments::AdjustmentSet,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM adjustment_rules WHERE portal_id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await?;
    for (ty, rules) in adjustments {
        sqlx::query(
            "INSERT INTO adjustment_rules (portal_id, object_type, rules) VALUES ($1, $2, $3)",
        )
        .bind(id)
        .bind(ty.as_str())
        .bind(serde_json::to_value(rules).unwrap_or_default())
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// One line of `portal list`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PortalSummary {
    /// Portal id.
    pub portal_id: i64,
    /// Status.
    pub status: String,
    /// HubSpot auth kind.
    pub hubspot_auth: String,
    /// impact.com Account SID.
    pub impact_account_sid: Option<String>,
    /// impact.com Program ID.
    pub impact_program_id: Option<String>,
    /// impact.com credentials health.
    pub credentials_status: String,
    /// Last change.
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

/// Every portal, by id.
pub async fn list(pool: &PgPool) -> Result<Vec<PortalSummary>, sqlx::Error> {
    let rows = sqlx::query("SELECT portal_id, status, hubspot_auth_kind, impact_account_sid, impact_program_id, credentials_status, updated_at FROM portals ORDER BY portal_id")
        .fetch_all(pool)
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| PortalSummary {
            portal_id: r.get("portal_id"),
            status: r.get("status"),
            hubspot_auth: r.get("hubspot_auth_kind"),
            impact_account_sid: r.get("impact_account_sid"),
            impact_program_id: r.get("impact_program_id"),
            credentials_status: r.get("credentials_status"),
            updated_at: r.get("updated_at"),
        })
        .collect())
}

/// Records whether impact.com accepted the portal's credentials.
pub async fn set_credentials(
    pool: &PgPool,
    portal: PortalId,
    status: CredentialsStatus,
    error: Option<&str>,
) -> Result<(), sqlx::Error> {
    set_credentials_status(pool, portal, status.as_str(), error).await
}

/// [`set_credentials`] by the status's stored name (`ok`/`failing`).
pub async fn set_credentials_status(
    pool: &PgPool,
    portal: PortalId,
    status: &str,
    error: Option<&str>,
) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    let changed = sqlx::query("UPDATE portals SET credentials_status = $2, credentials_error = $3 WHERE portal_id = $1 AND (credentials_status <> $2 OR credentials_error IS DISTINCT FROM $3)")
        .bind(portal.db_key())
        .bind(status)
        .bind(error)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if changed > 0 {
        // Workers' caches learn the new status (and stop re-writing it).
        notify(&mut tx, portal).await?;
    }
    tx.commit().await
}

mod load;

pub use load::{StoredPortal, load};

mod oauth_login;

pub use oauth_login::{OAuthLogin, OAuthTokens, store_oauth_tokens};
