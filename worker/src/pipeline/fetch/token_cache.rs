//! OAuth access tokens by portal, with their expiry (one HubSpot token
//! read per portal, not one per event).

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use domain::events::PortalId;
use secrecy::SecretString;
use tokio::sync::Mutex;

/// OAuth access tokens by portal, with their expiry.
#[derive(Default)]
pub struct TokenCache {
    entries: Mutex<HashMap<PortalId, (SecretString, Instant)>>,
}

impl TokenCache {
    /// The portal's token, if it stays valid for more than `margin`.
    pub async fn fresh(&self, portal: PortalId, margin: Duration) -> Option<SecretString> {
        let entries = self.entries.lock().await;
        let (token, until) = entries.get(&portal)?;
        (*until > Instant::now() + margin).then(|| token.clone())
    }

    /// Keeps `token`, valid for `ttl`.
    pub async fn insert(&self, portal: PortalId, token: SecretString, ttl: Duration) {
        let until = Instant::now() + ttl;
        self.entries.lock().await.insert(portal, (token, until));
    }

    /// Forgets a portal's token.
    pub async fn invalidate(&self, portal: PortalId) {
        self.entries.lock().await.remove(&portal);
    }
}
