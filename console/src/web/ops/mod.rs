//! What the website and the JSON API do to a portal. Every save rebuilds the
//! portal's document, validates it exactly as `worker portal apply` does, and
//! applies it with the same function (one transaction, audit log, NOTIFY to
//! the workers).

use std::collections::BTreeMap;

use domain::{
    adjustments::AdjustmentSet,
    events::PortalId,
    object_type::ObjectType,
    portal::{ImpactSection, MappingRow, PortalDocument, unmapped_required},
    triggers::TriggerSet,
};
use secrecy::SecretString;
use serde::Serialize;
use shared::{
    db::{self, portals::StoredPortal},
    impact::{ImpactCredentials, program::ProgramCheck},
};

use super::Website;
use shared::http::logged;

mod activity;
mod error;
mod hubspot;
mod portal_document;
mod webhook_secret;

pub use error::OpError;

pub use hubspot::{hubspot_token, properties};
pub use portal_document::{export, import};
pub use webhook_secret::{WebhookSecretInput, set_webhook_secret};

pub use activity::{
    Activity, AdjustmentItem, ConversionItem, DeadLetterItem, activity, replay, replay_request,
    send_again,
};

/// A portal as the pages and the API show it (no secret ever leaves).
#[derive(Debug, Serialize)]
pub struct PortalView {
    /// The HubSpot portal id.
    pub portal_id: u64,
    /// `active`, `paused` or `uninstalled`.
    pub status: String,
    /// When an operator paused the portal (RFC 3339; `paused` only).
    pub paused_at: Option<String>,
    /// `oauth` or `private_app`.
    pub hubspot_auth: String,
    /// impact.com credentials health: `unknown`, `ok`, `failing`.
    pub credentials_status: String,
    /// Account SID (None until Settings are saved).
    pub account_sid: Option<String>,
    /// Program ID.
    pub program_id: Option<String>,
    /// True when an Auth Token is stored (it is never shown again).
    pub auth_token_saved: bool,
    /// True when a private app's webhook secret is stored (never shown again).
    pub webhook_secret_set: bool,
    /// Event triggers per object type.
    pub triggers: TriggerSet,
    /// Field mappings per object type, as in a document.
    pub mappings: BTreeMap<ObjectType, Vec<MappingRow>>,
    /// Required impact.com fields still unmapped, per object type.
    pub unmapped: BTreeMap<ObjectType, Vec<&'static str>>,
    /// Reversal and modification rules per object type, as in a document.
    pub adjustments: AdjustmentSet,
    /// The configuration's version: an edit says which version it started
    /// from (a form's `version` field, the API's `If-Match`), and is
    /// refused when another change came first.
    pub version: i64,
}

async fn stored(site: &Website, portal: PortalId) -> Result<StoredPortal, OpError> {
    db::portals::load(&site.pool, Some(&site.cipher), portal)
        .await?
        .ok_or(OpError::NotFound)
}

/// The portal's view.
pub async fn view(site: &Website, portal: PortalId) -> Result<PortalView, OpError> {
    let s = stored(site, portal).await?;
    let doc = s
        .config
        .as_ref()
        .map(|c| PortalDocument::export(c, s.auth_kind));
    let unmapped = ObjectType::ALL
        .iter()
        .map(|ty| {
            let rows = s
                .config
                .as_ref()
                .and_then(|c| c.mappings.get(ty))
                .map(Vec::as_slice)
                .unwrap_or_default();
            (*ty, unmapped_required(rows))
        })
        .collect();
    Ok(PortalView {
        portal_id: portal.0,
        status: s.status.as_str().into(),
        paused_at: s.paused_at.map(|t| t.to_rfc3339()),
        hubspot_auth: s.auth_kind.as_str().into(),
        credentials_status: s.credentials_status.clone(),
        account_sid: doc.as_ref().map(|d| d.impact.account_sid.clone()),
        program_id: doc.as_ref().map(|d| d.impact.program_id.clone()),
        auth_token_saved: s.impact_auth_token.is_some(),
        webhook_secret_set: s.webhook_secret_set,
        triggers: doc.as_ref().map(|d| d.triggers.clone()).unwrap_or_default(),
        adjustments: doc
            .as_ref()
            .map(|d| d.adjustments.clone())
            .unwrap_or_default(),
        mappings: doc.map(|d| d.mappings).unwrap_or_default(),
        unmapped,
        version: s.version,
    })
}

/// Every portal (operator).
pub async fn list(site: &Website) -> Result<Vec<db::portals::PortalSummary>, OpError> {
    Ok(db::portals::list(&site.pool).await?)
}

/// The current document of a configured portal (for an edit), or 409.
async fn document(site: &Website, portal: PortalId) -> Result<PortalDocument, OpError> {
    let s = stored(site, portal).await?;
    let c = s.config.ok_or_else(|| {
        OpError::Conflict(
            "save the impact.com Settings first (Account SID, Auth Token, Program ID)".into(),
        )
    })?;
    Ok(PortalDocument::export(&c, s.auth_kind))
}

/// Who makes a change, and from which version of the configuration.
#[derive(Debug, Clone, Copy)]
pub struct Edit<'a> {
    /// The audit log's actor.
    pub actor: &'a str,
    /// The version the change started from (`None`: whatever is current).
    pub version: Option<i64>,
}

/// Validates and applies a document as `worker portal apply` does, only
/// on top of the edit's version. Returns warnings.
async fn apply(
    site: &Website,
    mut doc: PortalDocument,
    edit: Edit<'_>,
) -> Result<Vec<String>, OpError> {
    // The owner changes neither the status (paused by an operator, or
    // uninstalled) nor the HubSpot authentication: both stay as stored.
    doc.hubspot.auth_kind = None;
    doc.status = None;
    let validated = doc.validate().map_err(|e| OpError::Invalid(e.0))?;
    db::portals::apply_keeping_status(
        &site.pool,
        &site.cipher,
        &validated,
        edit.actor,
        edit.version,
    )
    .await?;
    Ok(validated.warnings)
}

/// The Settings form.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct SettingsInput {
    /// Account SID.
    pub account_sid: String,
    /// Auth Token; empty or absent keeps the stored one.
    #[serde(default)]
    pub auth_token: Option<String>,
    /// Program ID.
    pub program_id: String,
}

/// Saves the impact.com settings after checking them with impact.com.
pub async fn save_settings(
    site: &Website,
    portal: PortalId,
    input: SettingsInput,
    edit: Edit<'_>,
) -> Result<Vec<String>, OpError> {
    let s = stored(site, portal).await?;
    // Stale before anything is checked with impact.com (apply checks again).
    if let Some(expected) = edit.version.filter(|v| *v != s.version) {
        return Err(OpError::Stale {
            expected,
            current: s.version,
        });
    }
    let new_token = input
        .auth_token
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
        .map(SecretString::from);
    let sid = input.account_sid.trim().to_owned();
    let token = new_token
        .clone()
        .or(s.impact_auth_token.clone())
        .ok_or_else(|| {
            OpError::Invalid(vec![
                "Auth Token: required (no token is saved for this account yet)".into(),
            ])
        })?;
    let program = input.program_id.trim().to_owned();
    let mut warnings = vec![];
    if !sid.is_empty() && !program.is_empty() && program.bytes().all(|b| b.is_ascii_digit()) {
        let creds = ImpactCredentials {
            account_sid: sid.clone(),
            auth_token: token,
        };
        check_program(site, &creds, &program, &mut warnings).await?;
    }
    let mut doc = match s.config {
        Some(c) => PortalDocument::export(&c, s.auth_kind),
        None => PortalDocument {
            portal_id: portal.0,
            status: None,
            hubspot: Default::default(),
            impact: ImpactSection {
                account_sid: String::new(),
                auth_token: None,
                program_id: String::new(),
            },
            triggers: BTreeMap::new(),
            mappings: BTreeMap::new(),
            adjustments: BTreeMap::new(),
        },
    };
    doc.impact = ImpactSection {
        account_sid: sid,
        auth_token: new_token,
        program_id: program,
    };
    let mut more = apply(site, doc, edit).await?;
    if warnings.is_empty() {
        db::portals::set_credentials_status(&site.pool, portal, "ok", None).await?;
    }
    warnings.append(&mut more);
    Ok(warnings)
}

/// Checks the Account SID, Auth Token and Program ID together with
/// impact.com (`GET /Advertisers/{SID}/Campaigns/{ProgramId}`): a refusal
/// names the part that is wrong; when impact.com cannot answer, the
/// settings are saved unchecked with a warning.
async fn check_program(
    site: &Website,
    creds: &ImpactCredentials,
    program: &str,
    warnings: &mut Vec<String>,
) -> Result<(), OpError> {
    let sid = &creds.account_sid;
    match site.impact.check_program(creds, program).await {
        Ok(ProgramCheck::Found { state, .. }) => {
            if let Some(state) = state.filter(|s| !s.eq_ignore_ascii_case("ACTIVE")) {
                warnings.push(format!(
                    "Program ID: program {program} is {state} at impact.com; it may not credit conversions"
                ));
            }
            Ok(())
        }
        Ok(ProgramCheck::CredentialsRefused { status: 401 }) => Err(OpError::Invalid(vec![
            "Account SID / Auth Token: impact.com refused them (401): copy both again from impact.com → Settings → API".into(),
        ])),
        Ok(ProgramCheck::CredentialsRefused { status }) => Err(OpError::Invalid(vec![format!(
            "Account SID / Auth Token: impact.com refused them ({status}): the token is disabled or may not read programs; check it under impact.com → Settings → API"
        )])),
        Ok(ProgramCheck::ProgramNotFound) => Err(OpError::Invalid(vec![format!(
            "Program ID: impact.com account {sid} has no program {program} (404); the Account SID and Auth Token are fine: copy the Program ID shown below your program's name in impact.com"
        )])),
        Err(e) => {
            let why = match &e {
                shared::impact::ImpactError::Unavailable(_) => {
                    format!("reference {}", logged("impact.com check", &e))
                }
                other => other.to_string(),
            };
            warnings.push(format!(
                "impact.com could not be reached to check the settings ({why}); saved unchecked"
            ));
            Ok(())
        }
    }
}

/// Replaces the event triggers.
pub async fn save_triggers(
    site: &Website,
    portal: PortalId,
    triggers: TriggerSet,
    edit: Edit<'_>,
) -> Result<Vec<String>, OpError> {
    let mut doc = document(site, portal).await?;
    doc.triggers = triggers;
    apply(site, doc, edit).await
}

/// Replaces the field mappings.
pub async fn save_mappings(
    site: &Website,
    portal: PortalId,
    mappings: BTreeMap<ObjectType, Vec<MappingRow>>,
    edit: Edit<'_>,
) -> Result<Vec<String>, OpError> {
    let mut doc = document(site, portal).await?;
    doc.mappings = mappings;
    apply(site, doc, edit).await
}

/// Replaces the reversal and modification rules (object types with no
/// rule are left out of the document).
pub async fn save_adjustments(
    site: &Website,
    portal: PortalId,
    mut adjustments: AdjustmentSet,
    edit: Edit<'_>,
) -> Result<Vec<String>, OpError> {
    adjustments.retain(|_, a| *a != Default::default());
    let mut doc = document(site, portal).await?;
    doc.adjustments = adjustments;
    apply(site, doc, edit).await
}

/// Deletes the portal and everything of it (configuration, secrets,
/// conversions, events, dead letters, audit rows: `shared::db::account`),
/// and tells the workers, which then skip its events as an unknown portal.
pub async fn delete(site: &Website, portal: PortalId, actor: &str) -> Result<(), OpError> {
    if !db::account::delete(&site.pool, &site.cipher, portal, actor).await? {
        return Err(OpError::NotFound);
    }
    site.properties
        .write()
        .await
        .retain(|(p, _), _| *p != portal);
    Ok(())
}

/// The name of the operator whose token `token` is, if any.
pub fn operator_name(site: &Website, token: &str) -> Option<String> {
    site.operators
        .as_ref()
        .and_then(|o| o.name_of(token))
        .map(str::to_owned)
}
