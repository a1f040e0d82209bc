//! HubSpot access tokens: a private app's static token, or OAuth tokens
//! refreshed before expiry, once across all workers (a refresh lease on the
//! portal's row; no transaction open during the call to HubSpot).

use std::time::Duration;

use crate::Worker;
use domain::{
    events::PortalId,
    failure::{Failure, FailureReason},
    portal::HubSpotAuthKind,
};
use secrecy::SecretString;
use shared::{
    db::portals::StoredPortal,
    hubspot::tokens::{REFRESH_MARGIN, TokenError, oauth_access_token},
};

/// The bearer token for a portal's HubSpot calls.
pub async fn hubspot_token(
    w: &Worker,
    portal: PortalId,
    stored: &StoredPortal,
) -> Result<SecretString, Failure> {
    match stored.auth_kind {
        HubSpotAuthKind::PrivateApp => stored.hubspot_private_token.clone().ok_or_else(|| {
            Failure::permanent(
                FailureReason::PortalUnconfigured,
                "no HubSpot private-app token stored",
            )
        }),
        HubSpotAuthKind::Oauth => {
            if let Some(t) = w.tokens.fresh(portal, REFRESH_MARGIN).await {
                return Ok(t);
            }
            let (token, ttl) = oauth_token(w, portal, None).await?;
            w.tokens.insert(portal, token.clone(), ttl).await;
            Ok(token)
        }
    }
}

/// HubSpot refused `token` (401, e.g. `EXPIRED_AUTHENTICATION` before the
/// stored expiry): an OAuth token is refreshed now, once across workers, so
/// the in-process retry uses the new one instead of waiting on the retry
/// ladder. A private-app token cannot be refreshed: nothing to do.
pub async fn token_rejected(
    w: &Worker,
    portal: PortalId,
    stored: &StoredPortal,
    token: &SecretString,
) -> Result<(), Failure> {
    if stored.auth_kind != HubSpotAuthKind::Oauth {
        return Ok(());
    }
    metrics::counter!("hubspot_token_rejected_total").increment(1);
    w.tokens.invalidate(portal).await;
    let (fresh, ttl) = oauth_token(w, portal, Some(token)).await?;
    tracing::info!(%portal, "HubSpot refused the access token: refreshed it");
    w.tokens.insert(portal, fresh, ttl).await;
    Ok(())
}

/// Reads (and if needed refreshes) the stored OAuth token under the refresh
/// lease, so concurrent workers refresh once and all see the new token.
async fn oauth_token(
    w: &Worker,
    portal: PortalId,
    rejected: Option<&SecretString>,
) -> Result<(SecretString, Duration), Failure> {
    let result = oauth_access_token(
        &w.pool,
        &w.cipher,
        &w.hubspot,
        w.oauth_app.as_ref(),
        portal,
        rejected,
    )
    .await;
    match result {
        Ok((token, ttl, refreshed)) => {
            if refreshed {
                metrics::counter!("hubspot_token_refreshes_total", "outcome" => "ok").increment(1);
            }
            Ok((token, ttl))
        }
        Err(TokenError::Db(e)) => Err(Failure::database(e)),
        Err(TokenError::Unreadable(e)) => {
            Err(Failure::permanent(FailureReason::SecretUnreadable, e))
        }
        Err(TokenError::Unconfigured(e)) => {
            Err(Failure::permanent(FailureReason::PortalUnconfigured, e))
        }
        Err(TokenError::Revoked(detail)) => {
            w.portals.invalidate(portal).await;
            metrics::counter!("hubspot_token_refreshes_total", "outcome" => "revoked").increment(1);
            tracing::warn!(%portal, "HubSpot revoked the OAuth grant: portal marked uninstalled");
            Err(Failure::permanent(
                FailureReason::HubspotUninstalled,
                detail,
            ))
        }
        Err(TokenError::Busy) => Err(Failure::transient(
            FailureReason::HubspotUnavailable,
            TokenError::Busy.to_string(),
        )),
        Err(TokenError::Api(e)) => {
            metrics::counter!("hubspot_token_refreshes_total", "outcome" => "error").increment(1);
            Err(e.failure())
        }
    }
}
