//! The connector website: "log in through HubSpot" (OAuth install), then
//! Dashboard, Settings, Event Triggers, Field Mappings, Preview, Activity
//! (with each conversion's and dead letter's page) and Delete Account for
//! the session's portal. Server-rendered HTML (minijinja templates in
//! `console/templates/`); one small served script shows times in the
//! viewer's zone, and every page works without it. The JSON API in
//! `crate::api` runs the same operations ([`ops`]).
//!
//! The website has its own database pool, and without one (or without its
//! OAuth settings) its routes answer 503.

mod chart;
pub mod headers;
mod oauth;
pub mod ops;
mod pages;
mod preview;
pub mod session;
pub(crate) mod templates;
pub mod throttle;

pub use preview::{Preview, preview as preview_object};

use std::{collections::HashMap, sync::Arc};

use axum::{
    Router,
    http::StatusCode,
    response::{Html, IntoResponse, Response},
    routing::{get, post},
};
use domain::{events::PortalId, object_type::ObjectType};
use secrecy::ExposeSecret;
use shared::{
    config::Settings,
    crypto::SecretCipher,
    hubspot::{HubSpotClient, OAuthApp, PropertyInfo},
    impact::ImpactClient,
};
use sqlx::PgPool;
use tokio::sync::RwLock;

use crate::AppState;

/// The scopes the install asks for (docs/src/reference/hubspot.md).
pub const SCOPES: &str = "oauth crm.objects.contacts.read crm.objects.companies.read crm.objects.deals.read crm.objects.line_items.read crm.schemas.contacts.read crm.schemas.companies.read crm.schemas.deals.read";

/// Path HubSpot redirects to after the user approved the install.
pub const CALLBACK_PATH: &str = "/oauth/callback";

/// Everything the website needs; built once at start-up.
pub struct Website {
    /// PostgreSQL (connects lazily: a database that is down gives 503s, not a crash).
    pub pool: PgPool,
    /// Encrypts stored secrets.
    pub cipher: SecretCipher,
    /// Signs session cookies and derives CSRF tokens.
    pub sessions: session::SessionKeys,
    /// HubSpot API (token exchange, introspection, properties, objects).
    pub hubspot: HubSpotClient,
    /// impact.com API (credential checks).
    pub impact: ImpactClient,
    /// The app's client id and secret.
    pub app: OAuthApp,
    /// HubSpot's authorize page.
    pub authorize_url: String,
    /// Where HubSpot sends the user back (`CONNECTOR_PUBLIC_URL` + `/oauth/callback`).
    pub redirect_uri: String,
    /// Cookies get `Secure` and the `__Host-` prefix when the public URL is https.
    pub cookies: session::CookiePolicy,
    /// The operator tokens and their failure counts (`None`: no operator
    /// access to the JSON API).
    pub operators: Option<Arc<crate::operators::OperatorAuth>>,
    /// Properties per portal and object type, reloaded by the refresh button.
    pub properties: RwLock<HashMap<(PortalId, ObjectType), Vec<PropertyInfo>>>,
    /// The page templates.
    pub templates: minijinja::Environment<'static>,
    /// Records replay requests and queues them for the workers.
    pub replays: crate::replays::ReplayDesk,
    /// Per-portal rate limits of costly actions.
    pub throttle: throttle::Throttle,
}

/// The website, or why it is unavailable.
pub type WebsiteSlot = Result<Arc<Website>, Arc<str>>;

impl Website {
    /// Builds the website from settings; `Err` says which setting is missing.
    pub fn from_settings(s: &Settings) -> Result<Self, String> {
        Self::with_pool(s, None)
    }

    /// [`Website::from_settings`] on `pool` (shared with the admin API),
    /// or a pool of its own when `None`.
    pub fn with_pool(s: &Settings, pool: Option<PgPool>) -> Result<Self, String> {
        let client_id = s
            .hubspot_client_id
            .clone()
            .filter(|id| !id.trim().is_empty())
            .ok_or("CONNECTOR_HUBSPOT_CLIENT_ID is not set")?;
        let client_secret = s
            .hubspot_client_secret
            .clone()
            .ok_or("CONNECTOR_HUBSPOT_CLIENT_SECRET is not set")?;
        let key = s
            .encryption_key
            .as_ref()
            .ok_or("CONNECTOR_ENCRYPTION_KEY is not set")?;
        // The current key plus any old ones (key rotation).
        let cipher = SecretCipher::from_settings(s).map_err(|e| e.to_string())?;
        let public = public_url(s)
            .ok_or("CONNECTOR_CONSOLE_PUBLIC_URL (or CONNECTOR_PUBLIC_URL) is not set (the OAuth redirect URL is derived from it)")?
            .trim_end_matches('/');
        let pool = match pool {
            Some(p) => p,
            None => crate::db::pool(s)?,
        };
        let http = shared::upstream::client_builder()
            .timeout(std::time::Duration::from_secs(15))
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        let hubspot = HubSpotClient::new(http.clone(), &s.hubspot_api_url)
            .map_err(|e| format!("CONNECTOR_HUBSPOT_API_URL: {e}"))?
            .with_shared_budget(pool.clone());
        let replays = crate::replays::ReplayDesk::from_settings(s).map_err(|e| e.to_string())?;
        Ok(Self {
            replays,
            pool,
            cipher,
            sessions: session::SessionKeys::derive(key.expose_secret(), &client_secret),
            hubspot,
            impact: ImpactClient::new(http, &s.impact_api_url),
            app: OAuthApp {
                client_id,
                client_secret,
            },
            authorize_url: s.hubspot_authorize_url.clone(),
            redirect_uri: format!("{public}{CALLBACK_PATH}"),
            cookies: session::CookiePolicy {
                secure: headers::is_https(public),
            },
            operators: crate::operators::OperatorAuth::from_settings(s, "api")
                .map_err(|e| e.to_string())?
                .map(Arc::new),
            properties: RwLock::default(),
            templates: templates::environment(),
            throttle: throttle::Throttle::default(),
        })
    }

    /// Builds the slot the router keeps: the website or the reason it is off.
    pub fn slot(s: &Settings) -> WebsiteSlot {
        Self::slot_with(s, None)
    }

    /// [`Website::slot`] on `pool` (see [`Website::with_pool`]).
    pub fn slot_with(s: &Settings, pool: Option<PgPool>) -> WebsiteSlot {
        Self::with_pool(s, pool).map(Arc::new).map_err(|e| {
            tracing::info!("connector website disabled: {e}");
            Arc::from(e)
        })
    }

    /// The live session a request's cookie names: its signature and expiry
    /// are checked first (a forged cookie costs no database read), then
    /// that its row still exists (not logged out, uninstalled or deleted).
    /// `Err`: the database could not say (the caller answers 503).
    pub async fn session(
        &self,
        headers: &axum::http::HeaderMap,
    ) -> Result<Option<session::Principal>, ops::OpError> {
        let Some(signed) =
            session::cookie(headers, self.cookies.session()).and_then(|v| self.sessions.check(v))
        else {
            return Ok(None);
        };
        let found =
            shared::db::sessions::find(&self.pool, &signed.key, signed.portal.db_key()).await?;
        Ok(found.map(|u| session::Principal::Portal {
            portal: signed.portal,
            csrf: signed.csrf,
            user: session::User {
                id: u.user_id,
                email: u.user,
            },
        }))
    }
}

/// The public URL of the website (`CONNECTOR_CONSOLE_PUBLIC_URL`, else
/// `CONNECTOR_PUBLIC_URL`).
pub fn public_url(s: &Settings) -> Option<&str> {
    s.console_public_url.as_deref().or(s.public_url.as_deref())
}

/// The 503 every website route answers when it is not configured: the
/// reason (a setting) goes to the log, never to the visitor.
pub fn unavailable(reason: &str) -> Response {
    let id = shared::http::logged("website unavailable", reason);
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Html(format!(
            "<!doctype html><title>Connector website unavailable</title>\
             <h1>The connector website is not available right now</h1>\
             <p>Try again later. If it stays unavailable, tell the operator this reference: <code>{id}</code></p>"
        )),
    )
        .into_response()
}

/// The website's routes (pages, OAuth).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(pages::home))
        .route("/login", get(pages::login))
        .route("/oauth/start", get(oauth::start))
        .route(CALLBACK_PATH, get(oauth::callback))
        .route("/logout", post(oauth::logout))
        .route("/settings", get(pages::settings).post(pages::save_settings))
        .route("/triggers", get(pages::triggers))
        .route("/triggers/active", post(pages::set_active))
        .route("/triggers/add", post(pages::add_trigger))
        .route("/triggers/remove", post(pages::remove_trigger))
        .route("/triggers/adjustments", post(pages::save_adjustments))
        .route("/mappings", get(pages::mappings))
        .route("/mappings/add", post(pages::add_mapping))
        .route("/mappings/remove", post(pages::remove_mapping))
        .route("/mappings/refresh", post(pages::refresh_properties))
        .route("/mappings/value-map", post(pages::set_value_map))
        .route("/mappings/move", post(pages::move_mapping))
        .route("/mappings/export", get(pages::export_document))
        .route(
            "/mappings/import",
            // A pasted document may be as large as a document may be (form-encoded).
            post(pages::import_document).layer(axum::extract::DefaultBodyLimit::max(1024 * 1024)),
        )
        .route("/mappings/preview", post(pages::preview_mapping))
        .route("/preview", get(pages::preview_form).post(pages::preview))
        .route("/dashboard", get(pages::dashboard))
        .route("/activity", get(pages::activity))
        .route("/activity.csv", get(pages::activity_csv))
        .route("/activity/replay", post(pages::replay))
        .route("/conversions/{id}", get(pages::conversion))
        .route(
            "/conversions/{id}/send-again",
            get(pages::send_again_form).post(pages::send_again),
        )
        .route("/dead-letters/{id}", get(pages::dead_letter))
        .route("/account", get(pages::account))
        .route("/account/delete", post(pages::delete_account))
        // Forms and JSON bodies are small; webhooks keep their own limit.
        .layer(axum::extract::DefaultBodyLimit::max(256 * 1024))
}
