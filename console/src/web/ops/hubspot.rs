//! The portal's HubSpot side: its token (OAuth refreshed as needed) and
//! its properties (cached per portal and object type).

use domain::{events::PortalId, object_type::ObjectType, portal::HubSpotAuthKind};
use secrecy::SecretString;
use shared::hubspot::{
    PropertyInfo,
    tokens::{TokenError, oauth_access_token},
};

use super::{OpError, Website, stored};

/// A bearer token for the portal's HubSpot calls (OAuth refreshed as needed).
pub async fn hubspot_token(site: &Website, portal: PortalId) -> Result<SecretString, OpError> {
    let s = stored(site, portal).await?;
    match s.auth_kind {
        HubSpotAuthKind::PrivateApp => s
            .hubspot_private_token
            .ok_or_else(|| OpError::Conflict("no HubSpot private-app token stored".into())),
        HubSpotAuthKind::Oauth => {
            match oauth_access_token(
                &site.pool,
                &site.cipher,
                &site.hubspot,
                Some(&site.app),
                portal,
                None,
            )
            .await
            {
                Ok((t, _, _)) => Ok(t),
                Err(TokenError::Revoked(_)) => Err(OpError::Conflict(
                    "HubSpot refused to refresh the access token: the app was uninstalled. \
                     Processing is paused; log in through HubSpot again to reinstall."
                        .into(),
                )),
                Err(TokenError::Db(e)) => Err(e.into()),
                Err(TokenError::Api(e)) => Err(OpError::hubspot(&e)),
                Err(e) => Err(OpError::internal("hubspot token", e)),
            }
        }
    }
}

/// The portal's HubSpot properties of `ty` (cached; `refresh` reloads).
pub async fn properties(
    site: &Website,
    portal: PortalId,
    ty: ObjectType,
    refresh: bool,
) -> Result<Vec<PropertyInfo>, OpError> {
    if !refresh && let Some(p) = site.properties.read().await.get(&(portal, ty)) {
        return Ok(p.clone());
    }
    let token = hubspot_token(site, portal).await?;
    let props = site
        .hubspot
        .properties(&token, ty)
        .await
        .map_err(|e| OpError::hubspot(&e))?;
    site.properties
        .write()
        .await
        .insert((portal, ty), props.clone());
    Ok(props)
}
