//! The portal gate: only events of a known, active, configured portal go on.

use std::sync::Arc;

use domain::{events::PortalId, failure::Failure, portal::PortalStatus};
use shared::db::portals::StoredPortal;

use crate::Worker;

/// Whether a portal's events go on.
pub enum Gate {
    /// Active, with its configuration and impact.com credentials.
    Open(Arc<StoredPortal>),
    /// Why not: `unknown_portal`, `portal_paused`, `portal_uninstalled`,
    /// `portal_unconfigured`.
    Closed(&'static str),
}

/// The portal (cached) and whether its events go on.
pub async fn portal_gate(w: &Worker, portal: PortalId) -> Result<Gate, Failure> {
    let portal = w
        .portals
        .get(&w.pool, &w.cipher, portal)
        .await
        .map_err(Failure::database)?;
    Ok(match portal {
        None => Gate::Closed("unknown_portal"),
        Some(p) if p.status == PortalStatus::Paused => Gate::Closed("portal_paused"),
        Some(p) if p.status == PortalStatus::Uninstalled => Gate::Closed("portal_uninstalled"),
        Some(p) if p.config.is_none() || p.impact_auth_token.is_none() => {
            Gate::Closed("portal_unconfigured")
        }
        Some(p) => Gate::Open(p),
    })
}
