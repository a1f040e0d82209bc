//! A private-app portal's webhook secret: set or removed, never shown.

use domain::events::PortalId;
use secrecy::SecretString;
use shared::db::{self, portals::PortalStoreError};

use super::{OpError, Website};

/// The body of `PUT /api/v1/portals/{portal}/webhook-secret`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSecretInput {
    /// The private app's client secret (HubSpot: the app's Auth tab).
    pub webhook_secret: SecretString,
}

/// Stores (`Some`) or removes (`None`) the portal's webhook secret; ingest
/// picks the change up within seconds (NOTIFY), without a restart.
pub async fn set_webhook_secret(
    site: &Website,
    portal: PortalId,
    secret: Option<SecretString>,
    actor: &str,
) -> Result<(), OpError> {
    use secrecy::ExposeSecret as _;
    let secret = match secret {
        Some(s) => match domain::signature::check_secret(s.expose_secret()) {
            Ok(s) => Some(SecretString::from(s)),
            Err(e) => {
                return Err(OpError::Invalid(vec![format!(
                    "webhook_secret: {e} (DELETE removes it)"
                )]));
            }
        },
        None => None,
    };
    match db::webhook_secrets::set(&site.pool, &site.cipher, portal, secret.as_ref(), actor).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(OpError::NotFound),
        Err(PortalStoreError::Refused(m)) => Err(OpError::Conflict(m)),
        Err(e) => Err(e.into()),
    }
}
