//! Company currencies per portal (HubSpot's account information), cached
//! for an hour: the `CurrencyCode` of conversions whose object has no
//! currency of its own costs one account-information call per portal and
//! hour, whatever the number of deals.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use domain::events::PortalId;
use secrecy::SecretString;
use shared::hubspot::{HubSpotClient, HubSpotError, assemble::CompanyCurrency};
use tokio::sync::Mutex;

/// How long a company currency (or its absence) is kept.
pub const TTL: Duration = Duration::from_secs(3600);

/// When the currency was read, and what HubSpot said.
type Entry = (Instant, Option<String>);

/// Company currencies by portal.
#[derive(Default)]
pub struct CurrencyCache {
    entries: Mutex<HashMap<PortalId, Arc<Mutex<Option<Entry>>>>>,
}

impl CurrencyCache {
    /// The portal's company currency, read from HubSpot at most once per
    /// [`TTL`] (a failed read is not kept: the next event tries again).
    pub async fn get(
        &self,
        client: &HubSpotClient,
        token: &SecretString,
        portal: PortalId,
    ) -> Result<Option<String>, HubSpotError> {
        let slot = self.entries.lock().await.entry(portal).or_default().clone();
        // Held across the read: concurrent events of a portal wait for one
        // call instead of each making their own; other portals do not wait.
        let mut entry = slot.lock().await;
        if let Some((at, currency)) = entry.as_ref()
            && at.elapsed() < TTL
        {
            return Ok(currency.clone());
        }
        let currency = client.company_currency(token).await?;
        *entry = Some((Instant::now(), currency.clone()));
        Ok(currency)
    }

    /// The cache's currency for one portal's events, as the assembly asks.
    pub fn of(&self, portal: PortalId) -> PortalCurrency<'_> {
        PortalCurrency {
            cache: self,
            portal,
        }
    }

    /// Forgets a portal's currency (its configuration changed).
    pub async fn invalidate(&self, portal: PortalId) {
        self.entries.lock().await.remove(&portal);
    }
}

/// One portal's company currency from the [`CurrencyCache`].
pub struct PortalCurrency<'a> {
    cache: &'a CurrencyCache,
    portal: PortalId,
}

impl CompanyCurrency for PortalCurrency<'_> {
    fn company_currency(
        &self,
        client: &HubSpotClient,
        token: &SecretString,
    ) -> impl Future<Output = Result<Option<String>, HubSpotError>> + Send {
        self.cache.get(client, token, self.portal)
    }
}
