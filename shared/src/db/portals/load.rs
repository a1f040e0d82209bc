//! Reading a portal back: configuration (triggers, mappings) and decrypted secrets.

use domain::status::CredentialsStatus;
use std::collections::BTreeMap;

use secrecy::SecretString;
use sqlx::{PgPool, Row};

use super::{PortalStoreError, secret_context};
use crate::crypto::SecretCipher;
use domain::{
    adjustments::AdjustmentSet,
    events::PortalId,
    mapping::{FieldMapping, MappingSet, Source, Target},
    object_type::ObjectType,
    portal::{HubSpotAuthKind, PortalConfig, PortalStatus},
    triggers::{ObjectTriggers, PropertyTrigger, TriggerSet},
};

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
    /// Whether a webhook secret of its own is stored (never read back here).
    pub webhook_secret_set: bool,
    /// `unknown`, `ok` or `failing`.
    pub credentials_status: String,
    /// The configuration's version, raised by every applied change.
    pub version: i64,
    /// Since when an operator paused it (`paused` portals).
    pub paused_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl StoredPortal {
    /// Whether its impact.com credentials work, as last seen (`None`: a
    /// name this version does not know).
    pub fn credentials(&self) -> Option<CredentialsStatus> {
        self.credentials_status.parse().ok()
    }
}

/// Reads one portal (`None`: unknown portal).
pub async fn load(
    pool: &PgPool,
    cipher: Option<&SecretCipher>,
    portal: PortalId,
) -> Result<Option<StoredPortal>, PortalStoreError> {
    let id = portal.db_key();
    let Some(row) = sqlx::query("SELECT status, hubspot_auth_kind, hubspot_private_token, impact_account_sid, impact_auth_token, impact_program_id, credentials_status, hubspot_webhook_secret IS NOT NULL AS webhook_secret_set, config_version, paused_at FROM portals WHERE portal_id = $1")
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
            adjustments: load_adjustments(pool, id, portal).await?,
        }),
        _ => None,
    };
    Ok(Some(StoredPortal {
        status,
        auth_kind,
        config,
        hubspot_private_token,
        impact_auth_token,
        webhook_secret_set: row.get("webhook_secret_set"),
        credentials_status: row.get("credentials_status"),
        version: row.get("config_version"),
        paused_at: row.get("paused_at"),
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

async fn load_adjustments(
    pool: &PgPool,
    id: i64,
    portal: PortalId,
) -> Result<AdjustmentSet, PortalStoreError> {
    let mut set = AdjustmentSet::new();
    for row in sqlx::query("SELECT object_type, rules FROM adjustment_rules WHERE portal_id = $1")
        .bind(id)
        .fetch_all(pool)
        .await?
    {
        let corrupt = |problem: String| PortalStoreError::Corrupt { portal, problem };
        let ty = ObjectType::parse(row.get("object_type"))
            .ok_or_else(|| corrupt("adjustment object type".into()))?;
        let rules = serde_json::from_value(row.get("rules"))
            .map_err(|e| corrupt(format!("adjustment rules: {e}")))?;
        set.insert(ty, rules);
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
