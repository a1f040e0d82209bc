//! The `portals`, `triggers`, `trigger_properties` and `mappings` tables:
//! applying a validated document, and reading a portal back.

use std::collections::BTreeMap;

use secrecy::{ExposeSecret, SecretString};
use sqlx::{PgPool, Postgres, Row, Transaction};

use crate::{
    crypto::{CryptoError, SecretCipher},
    events::PortalId,
    mapping::{FieldMapping, MappingSet, Source, Target},
    object_type::ObjectType,
    portal::{HubSpotAuthKind, PortalConfig, PortalStatus, Validated},
    triggers::{ObjectTriggers, PropertyTrigger, TriggerSet},
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
pub async fn apply(
    pool: &PgPool,
    cipher: &SecretCipher,
    doc: &Validated,
    actor: &str,
) -> Result<bool, PortalStoreError> {
    let c = &doc.config;
    let id = i64::try_from(c.portal_id.0)
        .map_err(|_| PortalStoreError::Refused("portal_id too large".into()))?;
    let mut tx = pool.begin().await?;
    let existing = sqlx::query("SELECT hubspot_auth_kind, impact_auth_token IS NOT NULL AS has_impact FROM portals WHERE portal_id = $1 FOR UPDATE")
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
    let created = existing.is_none();
    let has_impact_token = existing
        .as_ref()
        .is_some_and(|r| r.get::<bool, _>("has_impact"));
    if doc.secrets.impact_auth_token.is_none() && !has_impact_token {
        return Err(PortalStoreError::Refused(
            "impact.auth_token: required (no token is stored for this portal yet)".into(),
        ));
    }
    let token = doc.secrets.hubspot_private_token.as_ref();
    let stored_kind = existing
        .as_ref()
        .and_then(|r| HubSpotAuthKind::parse(r.get::<&str, _>("hubspot_auth_kind")));
    let kind = match (token, stored_kind) {
        (Some(_), _) => HubSpotAuthKind::PrivateApp,
        (None, Some(k)) => k,
        (None, None) => {
            return Err(PortalStoreError::Refused(
                "hubspot.private_app_token: required for a new portal (or install the app with OAuth first)".into(),
            ));
        }
    };
    let enc = |s: Option<&SecretString>, column: &str| {
        s.map(|s| cipher.encrypt(s.expose_secret(), &secret_context(c.portal_id, column)))
    };
    sqlx::query(
        "INSERT INTO portals (portal_id, status, hubspot_auth_kind, hubspot_private_token,
             impact_account_sid, impact_auth_token, impact_program_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (portal_id) DO UPDATE SET
             status = EXCLUDED.status,
             hubspot_auth_kind = EXCLUDED.hubspot_auth_kind,
             hubspot_private_token = COALESCE(EXCLUDED.hubspot_private_token, portals.hubspot_private_token),
             impact_account_sid = EXCLUDED.impact_account_sid,
             impact_auth_token = COALESCE(EXCLUDED.impact_auth_token, portals.impact_auth_token),
             impact_program_id = EXCLUDED.impact_program_id,
             credentials_status = CASE WHEN EXCLUDED.impact_auth_token IS NULL
                 AND portals.impact_account_sid = EXCLUDED.impact_account_sid
                 THEN portals.credentials_status ELSE 'unknown' END,
             updated_at = now()",
    )
    .bind(id)
    .bind(c.status.as_str())
    .bind(kind.as_str())
    .bind(enc(token, "hubspot_private_token"))
    .bind(&c.impact_account_sid)
    .bind(enc(doc.secrets.impact_auth_token.as_ref(), "impact_auth_token"))
    .bind(&c.impact_program_id)
    .execute(&mut *tx)
    .await?;
    replace_rules(&mut tx, id, &c.triggers, &c.mappings).await?;
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

/// A portal as the worker needs it: configuration and decrypted secrets.
#[derive(Debug, Clone)]
pub struct StoredPortal {
    /// Status.
    pub status: PortalStatus,
    /// How HubSpot is accessed.
    pub auth_kind: HubSpotAuthKind,
    /// The configuration; `None` when the impact.com settings are missing.
    pub config: Option<PortalConfig>,
    /// The private-app token (private apps only).
    pub hubspot_private_token: Option<SecretString>,
    /// The impact.com Auth Token.
    pub impact_auth_token: Option<SecretString>,
    /// `unknown`, `ok` or `failing`.
    pub credentials_status: String,
}

/// Reads one portal (`None`: unknown portal).
pub async fn load(
    pool: &PgPool,
    cipher: Option<&SecretCipher>,
    portal: PortalId,
) -> Result<Option<StoredPortal>, PortalStoreError> {
    let id = i64::try_from(portal.0).unwrap_or(-1);
    let Some(row) = sqlx::query("SELECT status, hubspot_auth_kind, hubspot_private_token, impact_account_sid, impact_auth_token, impact_program_id, credentials_status FROM portals WHERE portal_id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await?
    else {
        return Ok(None);
    };
    let corrupt = |problem: String| PortalStoreError::Corrupt { portal, problem };
    let status = PortalStatus::parse(row.get("status")).ok_or_else(|| corrupt("status".into()))?;
    let auth_kind = HubSpotAuthKind::parse(row.get("hubspot_auth_kind"))
        .ok_or_else(|| corrupt("auth kind".into()))?;
    let decrypt = |column: &str| -> Result<Option<SecretString>, PortalStoreError> {
        let Some(cipher) = cipher else {
            return Ok(None);
        };
        let bytes: Option<Vec<u8>> = row.get(column);
        bytes
            .map(|b| cipher.decrypt(&b, &secret_context(portal, column)))
            .transpose()
            .map_err(Into::into)
    };
    let hubspot_private_token = decrypt("hubspot_private_token")?;
    let impact_auth_token = decrypt("impact_auth_token")?;
    let sid: Option<String> = row.get("impact_account_sid");
    let program: Option<String> = row.get("impact_program_id");
    let config = match (sid, program) {
        (Some(sid), Some(program)) => Some(PortalConfig {
            portal_id: portal,
            status,
            impact_account_sid: sid,
            impact_program_id: program,
            triggers: load_triggers(pool, id).await?,
            mappings: load_mappings(pool, id, portal).await?,
        }),
        _ => None,
    };
    Ok(Some(StoredPortal {
        status,
        auth_kind,
        config,
        hubspot_private_token,
        impact_auth_token,
        credentials_status: row.get("credentials_status"),
    }))
}

async fn load_triggers(pool: &PgPool, id: i64) -> Result<TriggerSet, sqlx::Error> {
    let mut set = TriggerSet::new();
    for row in sqlx::query("SELECT object_type, on_create FROM triggers WHERE portal_id = $1")
        .bind(id)
        .fetch_all(pool)
        .await?
    {
        if let Some(ty) = ObjectType::parse(row.get("object_type")) {
            set.insert(
                ty,
                ObjectTriggers {
                    on_create: row.get("on_create"),
                    on_change: vec![],
                },
            );
        }
    }
    for row in sqlx::query("SELECT object_type, property, only_values FROM trigger_properties WHERE portal_id = $1 ORDER BY object_type, position").bind(id).fetch_all(pool).await? {
        let Some(t) = ObjectType::parse(row.get("object_type")).and_then(|ty| set.get_mut(&ty)) else { continue };
        let values: Option<serde_json::Value> = row.get("only_values");
        t.on_change.push(PropertyTrigger {
            property: row.get("property"),
            only_values: values.and_then(|v| serde_json::from_value(v).ok()),
        });
    }
    Ok(set)
}

async fn load_mappings(
    pool: &PgPool,
    id: i64,
    portal: PortalId,
) -> Result<MappingSet, PortalStoreError> {
    let mut set = MappingSet::new();
    let rows = sqlx::query("SELECT object_type, source_from, source_const, target, value_map FROM mappings WHERE portal_id = $1 ORDER BY object_type, position")
        .bind(id)
        .fetch_all(pool)
        .await?;
    for row in rows {
        let corrupt = |problem: String| PortalStoreError::Corrupt { portal, problem };
        let ty = ObjectType::parse(row.get("object_type"))
            .ok_or_else(|| corrupt("object type".into()))?;
        let from: Option<String> = row.get("source_from");
        let source = match (from, row.get::<Option<String>, _>("source_const")) {
            (Some(f), _) => Source::parse_from(&f, ty).map_err(corrupt)?,
            (None, Some(c)) => Source::Const(c),
            (None, None) => return Err(corrupt("mapping without source".into())),
        };
        let target = Target::parse(row.get("target")).map_err(corrupt)?;
        let value_map: Option<serde_json::Value> = row.get("value_map");
        let value_map: Option<BTreeMap<String, String>> =
            value_map.and_then(|v| serde_json::from_value(v).ok());
        set.entry(ty).or_default().push(FieldMapping {
            source,
            target,
            value_map,
        });
    }
    Ok(set)
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

/// Records whether impact.com accepted the portal's credentials (`ok`/`failing`).
pub async fn set_credentials_status(
    pool: &PgPool,
    portal: PortalId,
    status: &str,
    error: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE portals SET credentials_status = $2, credentials_error = $3 WHERE portal_id = $1 AND (credentials_status <> $2 OR credentials_error IS DISTINCT FROM $3)")
        .bind(i64::try_from(portal.0).unwrap_or(-1))
        .bind(status)
        .bind(error)
        .execute(pool)
        .await
        .map(|_| ())
}
