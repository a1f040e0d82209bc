//! A portal's configuration: the JSON document operators apply and export
//! (configuration as code), and the validated [`PortalConfig`] the worker uses.
//!
//! Key names are public interface: extend the document, never rename.
//! Secrets (`hubspot.private_app_token`, `hubspot.webhook_secret`,
//! `impact.auth_token`) are accepted on apply and never exported; a secret
//! left out of an applied document keeps the stored value.

mod document;
pub mod limits;
mod validate;
mod validate_adjustments;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

pub use document::{HubSpotSection, ImpactSection, MappingRow, PortalDocument};
pub use validate::{DocumentErrors, StoredCredentials, Validated, unmapped_required};

use crate::{
    adjustments::AdjustmentSet, events::PortalId, mapping::MappingSet, triggers::TriggerSet,
};

/// Whether a portal's events are processed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum PortalStatus {
    /// Events are processed.
    #[default]
    Active,
    /// Paused by an operator (a document with `"status": "paused"`):
    /// configuration kept, events skipped, until an operator resumes it (a
    /// login through HubSpot does not).
    Paused,
    /// The app was uninstalled in HubSpot: configuration kept, events skipped.
    Uninstalled,
}

impl PortalStatus {
    /// The stored (and documented) name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Paused => "paused",
            Self::Uninstalled => "uninstalled",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(Self::Active),
            "paused" => Some(Self::Paused),
            "uninstalled" => Some(Self::Uninstalled),
            _ => None,
        }
    }
}

/// How the worker authenticates to a portal's HubSpot account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HubSpotAuthKind {
    /// A private app's static access token.
    PrivateApp,
    /// OAuth access and refresh tokens from the install flow.
    Oauth,
}

impl HubSpotAuthKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PrivateApp => "private_app",
            Self::Oauth => "oauth",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "private_app" => Some(Self::PrivateApp),
            "oauth" => Some(Self::Oauth),
            _ => None,
        }
    }
}

/// A portal's validated, non-secret configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct PortalConfig {
    /// The HubSpot account.
    pub portal_id: PortalId,
    /// Whether events are processed.
    pub status: PortalStatus,
    /// impact.com Account SID (Basic auth user name).
    pub impact_account_sid: String,
    /// impact.com Program ID, sent as `CampaignId`.
    pub impact_program_id: String,
    /// Event triggers.
    pub triggers: TriggerSet,
    /// Field mappings.
    pub mappings: MappingSet,
    /// Reversal and modification rules.
    pub adjustments: AdjustmentSet,
}

/// Secrets supplied by a document (`None`: keep what is stored).
#[derive(Debug, Default)]
pub struct PortalSecrets {
    /// HubSpot private-app token.
    pub hubspot_private_token: Option<SecretString>,
    /// The private app's webhook (client) secret.
    pub hubspot_webhook_secret: SecretUpdate,
    /// impact.com Auth Token.
    pub impact_auth_token: Option<SecretString>,
}

/// A change to a stored secret that can also be removed.
#[derive(Debug, Default)]
pub enum SecretUpdate {
    /// Keep what is stored.
    #[default]
    Keep,
    /// Store this value.
    Set(SecretString),
    /// Remove the stored value.
    Clear,
}

/// Whether `name` can be a HubSpot property's internal name (letters,
/// digits, `_` and `-`).
fn valid_property(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod tests_adjustments;

#[cfg(test)]
mod tests_limits;
