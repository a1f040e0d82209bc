//! OAuth token refresh: `POST /oauth/2026-03/token` with `grant_type=refresh_token`.

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::{HubSpotClient, HubSpotError, error::describe};
use domain::failure::truncate;

/// The connector's HubSpot app credentials.
#[derive(Debug, Clone)]
pub struct OAuthApp {
    /// App client id.
    pub client_id: String,
    /// App client secret.
    pub client_secret: SecretString,
}

/// Tokens returned by a refresh.
#[derive(Debug)]
pub struct TokenGrant {
    /// The new access token.
    pub access_token: SecretString,
    /// A new refresh token, when HubSpot rotated it.
    pub refresh_token: Option<SecretString>,
    /// Lifetime of the access token in seconds (about 1800).
    pub expires_in: u64,
}

impl TokenGrant {
    /// The grant as the portal store keeps it.
    pub fn tokens(&self) -> crate::db::portals::OAuthTokens<'_> {
        crate::db::portals::OAuthTokens {
            access_token: &self.access_token,
            refresh_token: self.refresh_token.as_ref(),
            expires_in: self.expires_in,
        }
    }
}

/// What introspection says of an active token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    /// The portal (hub) id.
    pub hub_id: u64,
    /// The id of the HubSpot user who granted the token (`user_id`).
    pub user_id: Option<u64>,
    /// That user's email address (`user`), when HubSpot says it.
    pub user: Option<String>,
}

/// Why a refresh failed.
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    /// `invalid_grant` / `BAD_REFRESH_TOKEN`: the app was uninstalled or the
    /// grant revoked. The portal must be paused, not retried.
    #[error("HubSpot revoked the grant: {0}")]
    Revoked(String),
    /// Anything else (classified like other API errors).
    #[error(transparent)]
    Api(#[from] HubSpotError),
}

impl HubSpotClient {
    /// Exchanges a refresh token for a new access token.
    pub async fn refresh_token(
        &self,
        app: &OAuthApp,
        refresh_token: &SecretString,
    ) -> Result<TokenGrant, OAuthError> {
        self.token_request(
            app,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token.expose_secret()),
            ],
        )
        .await
    }

    /// Exchanges the install flow's one-time code for tokens.
    pub async fn exchange_code(
        &self,
        app: &OAuthApp,
        code: &str,
        redirect_uri: &str,
    ) -> Result<TokenGrant, OAuthError> {
        self.token_request(
            app,
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", redirect_uri),
            ],
        )
        .await
    }

    /// `POST /oauth/2026-03/token/introspect`: the portal (hub) id a token
    /// belongs to and the HubSpot user who granted it; `None`: not active.
    pub async fn introspect(
        &self,
        app: &OAuthApp,
        token: &SecretString,
    ) -> Result<Option<TokenInfo>, HubSpotError> {
        #[derive(Deserialize)]
        struct Answer {
            #[serde(default)]
            active: bool,
            hub_id: Option<u64>,
            user_id: Option<u64>,
            user: Option<String>,
        }
        let form = [
            ("client_id", app.client_id.as_str()),
            ("client_secret", app.client_secret.expose_secret()),
            ("token", token.expose_secret()),
        ];
        let resp = self
            .http
            .post(self.url("oauth/2026-03/token/introspect"))
            .header("accept", "application/json")
            .form(&form)
            .send()
            .await
            .map_err(|e| HubSpotError::Unavailable(describe(&e)))?;
        if !resp.status().is_success() {
            return Err(HubSpotError::from_response(resp).await);
        }
        let body = crate::upstream::read_capped(resp, crate::upstream::SMALL_ANSWER)
            .await
            .map_err(|e| HubSpotError::from_read("introspection", e))?;
        let a: Answer = serde_json::from_slice(&body)
            .map_err(|e| HubSpotError::Decode(format!("introspection answer: {e}")))?;
        Ok(a.hub_id.filter(|_| a.active).map(|hub_id| TokenInfo {
            hub_id,
            user_id: a.user_id,
            user: a
                .user
                .map(|u| truncate(u.trim(), 200))
                .filter(|u| !u.is_empty()),
        }))
    }

    /// `POST /oauth/2026-03/token` with the app's credentials and `grant`.
    async fn token_request(
        &self,
        app: &OAuthApp,
        grant: &[(&str, &str)],
    ) -> Result<TokenGrant, OAuthError> {
        #[derive(Deserialize)]
        struct Answer {
            access_token: String,
            refresh_token: Option<String>,
            expires_in: Option<u64>,
        }
        let mut form: Vec<(&str, &str)> = grant.to_vec();
        form.push(("client_id", app.client_id.as_str()));
        form.push(("client_secret", app.client_secret.expose_secret()));
        let resp = self
            .http
            .post(self.url("oauth/2026-03/token"))
            .header("accept", "application/json")
            .form(&form)
            .send()
            .await
            .map_err(|e| HubSpotError::Unavailable(describe(&e)))?;
        let status = resp.status();
        metrics::counter!("hubspot_requests_total", "endpoint" => "oauth_token", "status" => status.as_u16().to_string())
            .increment(1);
        if status.is_success() {
            let body = crate::upstream::read_capped(resp, crate::upstream::SMALL_ANSWER)
                .await
                .map_err(|e| HubSpotError::from_read("token", e))?;
            let a: Answer = serde_json::from_slice(&body)
                .map_err(|e| HubSpotError::Decode(format!("token answer: {e}")))?;
            return Ok(TokenGrant {
                access_token: SecretString::from(a.access_token),
                refresh_token: a.refresh_token.map(SecretString::from),
                expires_in: a.expires_in.unwrap_or(1800),
            });
        }
        if status.as_u16() == 400 || status.as_u16() == 401 {
            let body = crate::upstream::error_text(resp).await;
            let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            let error = v.get("error").and_then(|e| e.as_str()).unwrap_or_default();
            let code = v.get("status").and_then(|e| e.as_str()).unwrap_or_default();
            if error == "invalid_grant" || code == "BAD_REFRESH_TOKEN" {
                return Err(OAuthError::Revoked(truncate(&body, 500)));
            }
            return Err(HubSpotError::Rejected {
                status: status.as_u16(),
                body: truncate(&body, 1000),
            }
            .into());
        }
        Err(HubSpotError::from_response(resp).await.into())
    }
}
