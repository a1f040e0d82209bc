//! The document's serde shape, and its export from a [`PortalConfig`].

use std::collections::BTreeMap;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::{HubSpotAuthKind, PortalConfig, PortalStatus};
use crate::{
    adjustments::ObjectAdjustments, mapping::Source, object_type::ObjectType,
    triggers::ObjectTriggers,
};

/// A portal configuration document, as applied and exported.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PortalDocument {
    /// The HubSpot portal (hub) id.
    pub portal_id: u64,
    /// `active` (default) or `paused`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<PortalStatus>,
    /// HubSpot access.
    #[serde(default)]
    pub hubspot: HubSpotSection,
    /// impact.com account settings.
    pub impact: ImpactSection,
    /// Event triggers per object type.
    #[serde(default)]
    pub triggers: BTreeMap<ObjectType, ObjectTriggers>,
    /// Field mappings per object type.
    #[serde(default)]
    pub mappings: BTreeMap<ObjectType, Vec<MappingRow>>,
    /// Reversal and modification rules per object type.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub adjustments: BTreeMap<ObjectType, ObjectAdjustments>,
}

/// `hubspot`: a private-app token (and the private app's webhook secret),
/// or nothing when OAuth tokens come from the install flow (or are already
/// stored).
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HubSpotSection {
    /// Private-app access token (`pat-...`). Never exported.
    #[serde(default, skip_serializing)]
    pub private_app_token: Option<SecretString>,
    /// The private app's client secret, which signs its webhooks: a string
    /// sets it, `null` removes it, absent keeps the stored one (`None`).
    /// Never exported.
    #[serde(default, skip_serializing, deserialize_with = "set_or_clear")]
    pub webhook_secret: Option<Option<SecretString>>,
    /// Export only: whether a webhook secret is stored. Ignored on apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_secret_set: Option<bool>,
    /// How the connector authenticates (`private_app` or `oauth`). Exported;
    /// on apply, a value other than the stored one switches explicitly (to
    /// `oauth`: with the tokens of an earlier login through HubSpot; to
    /// `private_app`: with the token given or stored). Absent: unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_kind: Option<HubSpotAuthKind>,
}

/// `impact`: the connector settings of the seed guide.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ImpactSection {
    /// Account SID.
    pub account_sid: String,
    /// Auth Token. Never exported.
    #[serde(default, skip_serializing)]
    pub auth_token: Option<SecretString>,
    /// Program ID (a string of digits; a JSON number is accepted too).
    #[serde(deserialize_with = "string_or_number")]
    pub program_id: String,
}

/// One mapping row: `{"from": ..., "to": ...}` or `{"const": ..., "to": ...}`,
/// optionally with a `value_map`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MappingRow {
    /// A HubSpot property, computed field or `line_item{i}.<prop>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// A constant value.
    #[serde(
        default,
        rename = "const",
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_string_or_number"
    )]
    pub constant: Option<String>,
    /// The impact.com field (`ItemSku{i}` for line-item fields).
    pub to: String,
    /// Translation of raw values; unlisted values pass through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_map: Option<BTreeMap<String, String>>,
}

impl PortalDocument {
    /// The document of a stored configuration, secrets omitted.
    pub fn export(config: &PortalConfig, auth_kind: HubSpotAuthKind) -> Self {
        let mappings = config
            .mappings
            .iter()
            .map(|(ty, rows)| {
                let rows = rows
                    .iter()
                    .map(|m| MappingRow {
                        from: m.source.display_from(),
                        constant: match &m.source {
                            Source::Const(c) => Some(c.clone()),
                            _ => None,
                        },
                        to: m.target.display(),
                        value_map: m.value_map.clone(),
                    })
                    .collect();
                (*ty, rows)
            })
            .collect();
        Self {
            portal_id: config.portal_id.0,
            status: Some(config.status),
            hubspot: HubSpotSection {
                private_app_token: None,
                webhook_secret: None,
                webhook_secret_set: None,
                auth_kind: Some(auth_kind),
            },
            impact: ImpactSection {
                account_sid: config.impact_account_sid.clone(),
                auth_token: None,
                program_id: config.impact_program_id.clone(),
            },
            triggers: config.triggers.clone(),
            mappings,
            adjustments: config.adjustments.clone(),
        }
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum StringOrNumber {
    S(String),
    N(serde_json::Number),
}

fn string_or_number<'de, D: serde::Deserializer<'de>>(de: D) -> Result<String, D::Error> {
    Ok(match StringOrNumber::deserialize(de)? {
        StringOrNumber::S(s) => s,
        StringOrNumber::N(n) => n.to_string(),
    })
}

fn opt_string_or_number<'de, D: serde::Deserializer<'de>>(
    de: D,
) -> Result<Option<String>, D::Error> {
    string_or_number(de).map(Some)
}

/// A present key: `null` is `Some(None)` (remove), a value `Some(Some(_))`.
fn set_or_clear<'de, D: serde::Deserializer<'de>>(
    de: D,
) -> Result<Option<Option<SecretString>>, D::Error> {
    Option::<SecretString>::deserialize(de).map(Some)
}
