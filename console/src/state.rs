//! What every website and API handler shares.

use shared::config::Settings;

use crate::web::{Website, WebsiteSlot};

/// Shared, cheaply cloned handler state.
#[derive(Clone)]
pub struct AppState {
    /// The connector website and its API, or why they are off (503).
    pub website: WebsiteSlot,
    /// The public URL is https: answers carry HSTS.
    pub https: bool,
}

impl AppState {
    /// Builds the state; the database and the broker connect lazily.
    pub fn from_settings(s: &Settings) -> Self {
        Self::with_pool(s, None)
    }

    /// [`AppState::from_settings`] on `pool` (shared with the admin API).
    pub fn with_pool(s: &Settings, pool: Option<sqlx::PgPool>) -> Self {
        Self {
            website: Website::slot_with(s, pool),
            https: crate::web::public_url(s).is_some_and(crate::web::headers::is_https),
        }
    }
}
