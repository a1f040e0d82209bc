//! The portal document on the Field Mappings page: export (what `worker
//! portal export` and the API show, secrets left out) and import (its
//! triggers, mappings and adjustment rules; the impact.com settings and
//! secrets stay as saved on Settings).

use domain::{events::PortalId, portal::PortalDocument};

use super::{Edit, OpError, Website, apply, document, stored};

/// The document of the portal as JSON, and the configuration's version.
pub async fn export(site: &Website, portal: PortalId) -> Result<(String, i64), OpError> {
    let s = stored(site, portal).await?;
    let c = s.config.ok_or_else(|| {
        OpError::Conflict("save the impact.com Settings first: there is no document yet".into())
    })?;
    let doc = PortalDocument::export(&c, s.auth_kind);
    let text = serde_json::to_string_pretty(&doc)
        .map_err(|e| OpError::Invalid(vec![format!("document: {e}")]))?;
    Ok((text, s.version))
}

/// Applies the triggers, mappings and adjustment rules of document `text`
/// on top of the edit's version (validated and limited as every document
/// is). Returns warnings.
pub async fn import(
    site: &Website,
    portal: PortalId,
    text: &str,
    edit: Edit<'_>,
) -> Result<Vec<String>, OpError> {
    let imported = PortalDocument::parse(text).map_err(|e| OpError::Invalid(e.0))?;
    if imported.portal_id != portal.0 {
        return Err(OpError::Invalid(vec![format!(
            "portal_id: the document is portal {}'s; this is portal {portal}",
            imported.portal_id
        )]));
    }
    let mut doc = document(site, portal).await?;
    let mut notes = vec![];
    if imported.impact.account_sid != doc.impact.account_sid
        || imported.impact.program_id != doc.impact.program_id
        || imported.impact.auth_token.is_some()
        || imported.hubspot.private_app_token.is_some()
    {
        notes.push(
            "The document's impact.com settings and secrets were not applied: change them on Settings."
                .to_owned(),
        );
    }
    doc.triggers = imported.triggers;
    doc.mappings = imported.mappings;
    doc.adjustments = imported.adjustments;
    let mut warnings = apply(site, doc, edit).await?;
    warnings.append(&mut notes);
    Ok(warnings)
}
