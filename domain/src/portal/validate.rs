//! From a document to a [`PortalConfig`]: every problem is reported at once,
//! each with the path of the offending key.

use std::collections::BTreeSet;

use secrecy::{ExposeSecret, SecretString};

use super::{
    HubSpotAuthKind, PortalConfig, PortalDocument, PortalSecrets, PortalStatus, SecretUpdate,
    valid_property,
};
use crate::{
    events::PortalId,
    mapping::{
        ATTRIBUTION_FIELDS, EVENT_TYPE_FIELDS, FieldMapping, MappingSet, Source, Target, normalize,
        suggested_mapping,
    },
    object_type::ObjectType,
};

/// Why a document was refused: one line per problem, each starting with its path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid portal document:\n  - {}", .0.join("\n  - "))]
pub struct DocumentErrors(pub Vec<String>);

/// A valid document, split into configuration, secrets and advice.
#[derive(Debug)]
pub struct Validated {
    /// The configuration to store.
    pub config: PortalConfig,
    /// Secrets supplied (absent: keep the stored ones).
    pub secrets: PortalSecrets,
    /// Not errors, but probably mistakes (e.g. a trigger without mappings).
    pub warnings: Vec<String>,
    /// `hubspot.auth_kind` as given: an explicit switch of the HubSpot
    /// authentication (`None`: keep what is stored, or what the secrets say).
    pub auth_kind: Option<HubSpotAuthKind>,
}

/// What is stored for a portal before a document is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredCredentials {
    /// How the connector authenticates with HubSpot.
    pub hubspot: HubSpotAuthKind,
    /// Whether an impact.com Auth Token is stored.
    pub impact_token: bool,
    /// Whether a private-app token is stored.
    pub private_token: bool,
    /// Whether OAuth tokens are stored (an OAuth login stores them, also for
    /// a portal that stays on its private-app token).
    pub oauth_tokens: bool,
}

impl Validated {
    /// The HubSpot authentication the portal has once this document is
    /// applied over `stored` (`None`: a new portal), or why it cannot be
    /// applied: a portal needs an impact.com Auth Token, and a HubSpot
    /// credential (a private-app token in the document, or one stored, e.g.
    /// from the OAuth install).
    pub fn credentials_over(
        &self,
        stored: Option<StoredCredentials>,
    ) -> Result<HubSpotAuthKind, String> {
        if self.secrets.impact_auth_token.is_none() && !stored.is_some_and(|s| s.impact_token) {
            return Err(
                "impact.auth_token: required (no token is stored for this portal yet)".into(),
            );
        }
        let given = self.secrets.hubspot_private_token.is_some();
        let kind = match (self.auth_kind, given, stored) {
            (Some(HubSpotAuthKind::Oauth), true, _) => return Err(
                "hubspot: a private_app_token with auth_kind \"oauth\" contradict each other; \
                 give one of them"
                    .into(),
            ),
            (_, true, _) => HubSpotAuthKind::PrivateApp,
            (None, false, Some(s)) => s.hubspot,
            (Some(kind), false, Some(s)) if kind == s.hubspot => kind,
            (Some(HubSpotAuthKind::Oauth), false, Some(s)) if s.oauth_tokens => {
                HubSpotAuthKind::Oauth
            }
            (Some(HubSpotAuthKind::Oauth), false, _) => return Err(
                "hubspot.auth_kind: \"oauth\" needs the OAuth tokens of a login through \
                 HubSpot on the website, and none are stored for this portal"
                    .into(),
            ),
            (Some(HubSpotAuthKind::PrivateApp), false, Some(s)) if s.private_token => {
                HubSpotAuthKind::PrivateApp
            }
            (Some(HubSpotAuthKind::PrivateApp), false, _) => return Err(
                "hubspot.private_app_token: required to switch to a private app (none is stored)"
                    .into(),
            ),
            (None, false, None) => return Err("hubspot.private_app_token: required for a new portal (or install the app with OAuth first)".into()),
        };
        if kind == HubSpotAuthKind::Oauth
            && matches!(self.secrets.hubspot_webhook_secret, SecretUpdate::Set(_))
        {
            return Err(
                "hubspot.webhook_secret: only for a private app: this portal uses the \
                 OAuth (public) app, whose webhooks are signed with CONNECTOR_HUBSPOT_CLIENT_SECRET"
                    .into(),
            );
        }
        Ok(kind)
    }
}

impl PortalDocument {
    /// Parses JSON text; syntax and shape errors name the line and column.
    pub fn parse(text: &str) -> Result<Self, DocumentErrors> {
        super::limits::check_text(text).map_err(|e| DocumentErrors(vec![e]))?;
        serde_json::from_str(text).map_err(|e| DocumentErrors(vec![e.to_string()]))
    }

    /// Checks everything and builds the typed configuration.
    pub fn validate(self) -> Result<Validated, DocumentErrors> {
        let mut errors = Vec::new();
        let mut warnings = Vec::new();
        super::limits::check(&self, &mut errors);
        if self.portal_id == 0 || i64::try_from(self.portal_id).is_err() {
            errors.push("portal_id: must be a HubSpot portal id (a positive integer)".into());
        }
        let status = match self.status {
            Some(PortalStatus::Uninstalled) => {
                errors.push(
                    "status: \"uninstalled\" is set by the connector when HubSpot revokes \
                     access; use \"active\" or \"paused\""
                        .into(),
                );
                PortalStatus::Paused
            }
            s => s.unwrap_or_default(),
        };
        let sid = self.impact.account_sid.trim();
        if sid.is_empty() || !sid.chars().all(|c| c.is_ascii_alphanumeric()) {
            errors.push(
                "impact.account_sid: must be the Account SID from impact.com's API \
                 credentials (letters and digits)"
                    .into(),
            );
        }
        let program = self.impact.program_id.trim();
        if program.is_empty() || !program.bytes().all(|b| b.is_ascii_digit()) {
            errors.push(format!(
                "impact.program_id: {program:?} is not a Program ID (a number, e.g. \"1000\")"
            ));
        }
        if let Some(t) = &self.impact.auth_token
            && t.expose_secret().trim().is_empty()
        {
            errors.push(
                "impact.auth_token: must not be empty (leave it out to keep the stored one)".into(),
            );
        }
        if let Some(t) = &self.hubspot.private_app_token
            && t.expose_secret().trim().is_empty()
        {
            errors.push("hubspot.private_app_token: must not be empty".into());
        }
        let webhook_secret = match self.hubspot.webhook_secret {
            None => SecretUpdate::Keep,
            Some(None) => SecretUpdate::Clear,
            Some(Some(s)) => match crate::signature::check_secret(s.expose_secret()) {
                Ok(s) => SecretUpdate::Set(SecretString::from(s)),
                Err(e) => {
                    errors.push(format!(
                        "hubspot.webhook_secret: {e} (null removes the stored one)"
                    ));
                    SecretUpdate::Keep
                }
            },
        };

        for (ty, t) in &self.triggers {
            if t.on_change.len() > super::limits::MAX_TRIGGER_PROPERTIES_PER_OBJECT {
                continue; // One error (the limit), not one per entry.
            }
            let mut seen = BTreeSet::new();
            for (i, p) in t.on_change.iter().enumerate() {
                let path = format!("triggers.{ty}.on_change[{i}]");
                if !valid_property(&p.property) {
                    errors.push(format!(
                        "{path}: {:?} is not a HubSpot internal property name",
                        p.property
                    ));
                }
                if !seen.insert(p.property.as_str()) {
                    errors.push(format!("{path}: {:?} is listed twice", p.property));
                }
                if p.only_values.as_ref().is_some_and(Vec::is_empty) {
                    errors.push(format!("{path}.values: must list at least one value"));
                }
                if p.property == ty.last_modified_property() {
                    warnings.push(format!(
                        "{path}: HubSpot cannot subscribe to {:?}: this trigger will never fire",
                        p.property
                    ));
                }
            }
        }

        let mut mappings = MappingSet::new();
        for (ty, rows) in &self.mappings {
            if rows.len() > super::limits::MAX_MAPPINGS_PER_OBJECT {
                continue; // One error (the limit), not one per row.
            }
            let mut typed = Vec::with_capacity(rows.len());
            let mut targets = BTreeSet::new();
            for (i, row) in rows.iter().enumerate() {
                let path = format!("mappings.{ty}[{i}]");
                match row_to_mapping(*ty, row) {
                    Ok(m) => {
                        if !targets.insert(m.target.clone()) {
                            errors.push(format!(
                                "{path}.to: {} is already mapped by an earlier row",
                                m.target.display()
                            ));
                        }
                        typed.push(m);
                    }
                    Err(e) => errors.push(format!("{path}{e}")),
                }
            }
            mappings.insert(*ty, typed);
        }

        for ty in ObjectType::ALL {
            let fires = self
                .triggers
                .get(&ty)
                .is_some_and(|t| t.on_create || !t.on_change.is_empty());
            let rows = mappings.get(&ty).map(Vec::as_slice).unwrap_or_default();
            if fires {
                warnings.extend(missing_required(ty, rows));
            } else if !rows.is_empty() {
                warnings.push(format!(
                    "mappings.{ty}: no trigger is enabled for {ty}: these mappings are unused"
                ));
            }
        }

        super::validate_adjustments::check(
            &self.adjustments,
            &self.triggers,
            &mappings,
            &mut errors,
            &mut warnings,
        );

        if !errors.is_empty() {
            return Err(DocumentErrors(errors));
        }
        Ok(Validated {
            config: PortalConfig {
                portal_id: PortalId(self.portal_id),
                status,
                impact_account_sid: sid.to_owned(),
                impact_program_id: program.to_owned(),
                triggers: self.triggers,
                mappings,
                adjustments: self.adjustments,
            },
            secrets: PortalSecrets {
                hubspot_private_token: self.hubspot.private_app_token,
                hubspot_webhook_secret: webhook_secret,
                impact_auth_token: self.impact.auth_token,
            },
            warnings,
            auth_kind: self.hubspot.auth_kind,
        })
    }
}

/// A row as a typed mapping; the error starts with the sub-path (`.to: ...`).
fn row_to_mapping(ty: ObjectType, row: &super::MappingRow) -> Result<FieldMapping, String> {
    let target = Target::parse(&row.to).map_err(|e| format!(".to: {e}"))?;
    let source = match (&row.from, &row.constant) {
        (Some(from), None) => Source::parse_from(from, ty).map_err(|e| format!(".from: {e}"))?,
        (None, Some(c)) => {
            if row.value_map.is_some() {
                return Err(": value_map only applies to \"from\" sources".into());
            }
            Source::Const(c.clone())
        }
        (Some(_), Some(_)) => return Err(": give either \"from\" or \"const\", not both".into()),
        (None, None) => return Err(": needs a source: \"from\" or \"const\"".into()),
    };
    let item_source = matches!(source, Source::LineItem(_));
    let item_target = matches!(target, Target::Item(_));
    // A constant may target an item field: it applies to every item.
    let constant = matches!(source, Source::Const(_));
    if item_source && !item_target {
        return Err(format!(
            ".to: line-item sources map to line-item fields such as ItemSku{{i}}, not {}",
            row.to
        ));
    }
    if item_target && !item_source && !constant {
        return Err(format!(
            ".from: {} is a line-item field: its source must be line_item{{i}}.<property> \
             (or a constant, the same for every item)",
            row.to
        ));
    }
    check_values(&target, &source, row)?;
    Ok(FieldMapping {
        source,
        target,
        value_map: row.value_map.clone(),
    })
}

/// A constant, and every value a `value_map` produces, must fit its
/// impact.com field (length, number, date) as it is sent.
fn check_values(target: &Target, source: &Source, row: &super::MappingRow) -> Result<(), String> {
    let field = target.display();
    if let Source::Const(c) = source {
        normalize(target.kind(), c).map_err(|e| format!(".const: not a valid {field}: {e}"))?;
    }
    for (from, to) in row.value_map.iter().flatten() {
        normalize(target.kind(), to)
            .map_err(|e| format!(".value_map.{from}: not a valid {field}: {e}"))?;
    }
    Ok(())
}

/// Advice when enabled triggers cannot produce a valid conversion.
fn missing_required(ty: ObjectType, rows: &[FieldMapping]) -> Vec<String> {
    let mut out = Vec::new();
    let missing = unmapped_minimum(rows);
    if !missing.is_empty() {
        out.push(format!(
            "mappings.{ty}: triggers are enabled but nothing maps to {}: \
             every {ty} conversion will fail as mapping_incomplete",
            missing.join(", ")
        ));
    }
    for field in unmapped_item_fields(rows) {
        let base = field.split('{').next().unwrap_or(field);
        out.push(format!(
            "mappings.{ty}: line-item fields are mapped but nothing maps {base}{{i}}, which \
             impact.com requires for every item: every {ty} conversion with line items will \
             fail as mapping_incomplete; map {}",
            suggested_mapping(base)
        ));
    }
    out
}

/// The required impact.com fields (or groups of alternatives) that `rows`
/// leave unmapped, with a suggested source for item fields; empty when a
/// conversion can be complete.
pub fn unmapped_required(rows: &[FieldMapping]) -> Vec<&'static str> {
    let mut missing = unmapped_minimum(rows);
    missing.extend(unmapped_item_fields(rows));
    missing
}

/// The order-level minimum `rows` leave unmapped.
fn unmapped_minimum(rows: &[FieldMapping]) -> Vec<&'static str> {
    let has = |f: &str| rows.iter().any(|m| m.target == Target::Field(f.to_owned()));
    let mut missing = Vec::new();
    if !EVENT_TYPE_FIELDS.iter().any(|f| has(f)) {
        missing.push("EventTypeCode (or ActionTrackerId/EventTypeId)");
    }
    if !has("EventDate") {
        missing.push("EventDate");
    }
    if !has("OrderId") {
        missing.push("OrderId");
    }
    if !ATTRIBUTION_FIELDS.iter().any(|f| has(f)) {
        missing.push("an attribution field (ClickId, CustomerId, ...)");
    }
    missing
}

/// When line-item fields are mapped: the item fields impact.com requires
/// for every item that nothing maps (`ItemQuantity{i}` defaults to the line
/// item's `quantity`), each with a suggested source.
fn unmapped_item_fields(rows: &[FieldMapping]) -> Vec<&'static str> {
    if !rows.iter().any(|m| matches!(m.target, Target::Item(_))) {
        return Vec::new();
    }
    let has = |f: &str| rows.iter().any(|m| m.target == Target::Item(f.to_owned()));
    let mut missing = Vec::new();
    if !has("ItemSku") {
        missing.push("ItemSku{i} (e.g. from line_item{i}.hs_sku)");
    }
    if !has("ItemCategory") {
        missing
            .push("ItemCategory{i} (e.g. a constant category, or a line-item property holding it)");
    }
    missing
}
