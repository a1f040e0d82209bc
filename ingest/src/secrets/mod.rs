//! The keys webhook signatures are checked with: the default (the public
//! app's client secret, `CONNECTOR_HUBSPOT_CLIENT_SECRET`) and per-portal
//! secrets of private apps, from a file ([`file`]) and the database
//! ([`db`]), held in memory and refreshed in the background: the request
//! path never waits on I/O.
//!
//! A portal with a secret of its own is verified with that secret only
//! (HubSpot signs a private app's webhooks with that app's secret and
//! nothing else), so the default secret cannot speak for it. A delivery
//! whose events name several portals (or none) can only be verified with
//! the default secret. When a portal is in both sources, the file wins.

pub mod db;
pub mod file;

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, RwLock,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use domain::{events::PortalId, signature::Verifier};
use secrecy::{ExposeSecret, SecretString};

/// A portal's secret as loaded.
#[derive(Clone)]
pub enum PortalKey {
    /// The secret.
    Secret(SecretString),
    /// Stored, but it cannot be read (no or wrong encryption key): the
    /// portal's webhooks are refused rather than verified with another key.
    Unreadable,
}

/// Where a portal's secret came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// `CONNECTOR_WEBHOOK_SECRETS_FILE`.
    File,
    /// `portals.hubspot_webhook_secret`.
    Database,
}

impl Source {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::File => "file",
            Self::Database => "database",
        }
    }
}

/// Why no key can check a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoKey {
    /// The portal's own secret is stored but cannot be read.
    Unreadable(PortalId),
    /// No secret of its own and no default secret.
    Unknown,
}

type Keys = HashMap<u64, Option<Arc<Verifier>>>;

/// The keys, shared by every request. Cheap to read.
pub struct WebhookSecrets {
    /// Versions accepted and allowed age, with the default secret (if any).
    template: Verifier,
    default: Option<Arc<Verifier>>,
    /// Per-portal keys (`None`: unreadable), rebuilt whenever a source changes.
    keys: RwLock<Arc<Keys>>,
    any: AtomicBool,
    sources: Mutex<HashMap<Source, HashMap<u64, PortalKey>>>,
    /// When the database's secrets were last read in full.
    db_synced: Mutex<Option<Instant>>,
    started: Instant,
}

impl WebhookSecrets {
    /// The default secret (if any) and the checks every key applies.
    pub fn new(default_secret: Option<&SecretString>, template: Verifier) -> Self {
        let default =
            default_secret.map(|s| Arc::new(template.with_secret(s.expose_secret().trim())));
        Self {
            template,
            default,
            keys: RwLock::new(Arc::new(HashMap::new())),
            any: AtomicBool::new(false),
            sources: Mutex::new(HashMap::new()),
            db_synced: Mutex::new(None),
            started: Instant::now(),
        }
    }

    /// Whether a default secret is configured.
    pub fn has_default(&self) -> bool {
        self.default.is_some()
    }

    /// Whether any portal has a key of its own: only then does the request
    /// path read a delivery's `portalId` before checking its signature.
    pub fn has_portal_keys(&self) -> bool {
        self.any.load(Ordering::Acquire)
    }

    /// The key a delivery naming `portal` (all its events) is checked with.
    pub fn key_for(&self, portal: Option<PortalId>) -> Result<Arc<Verifier>, NoKey> {
        if let Some(p) = portal {
            let keys = self.keys.read().unwrap_or_else(|e| e.into_inner()).clone();
            match keys.get(&p.0) {
                Some(Some(v)) => return Ok(v.clone()),
                Some(None) => return Err(NoKey::Unreadable(p)),
                None => {}
            }
        }
        self.default.clone().ok_or(NoKey::Unknown)
    }

    /// Replaces everything `source` holds.
    pub fn replace(&self, source: Source, keys: HashMap<u64, PortalKey>) {
        let mut sources = self.sources.lock().unwrap_or_else(|e| e.into_inner());
        sources.insert(source, keys);
        self.rebuild(&sources);
    }

    /// Sets (`Some`) or removes (`None`) one portal's key of `source`.
    pub fn update(&self, source: Source, portal: PortalId, key: Option<PortalKey>) {
        let mut sources = self.sources.lock().unwrap_or_else(|e| e.into_inner());
        let of_source = sources.entry(source).or_default();
        match key {
            Some(k) => of_source.insert(portal.0, k),
            None => of_source.remove(&portal.0),
        };
        self.rebuild(&sources);
    }

    fn rebuild(&self, sources: &HashMap<Source, HashMap<u64, PortalKey>>) {
        let mut keys = Keys::new();
        // The database first, then the file over it: the file wins.
        for source in [Source::Database, Source::File] {
            for (portal, key) in sources.get(&source).into_iter().flatten() {
                let verifier = match key {
                    PortalKey::Secret(s) => Some(Arc::new(
                        self.template.with_secret(s.expose_secret().trim()),
                    )),
                    PortalKey::Unreadable => None,
                };
                keys.insert(*portal, verifier);
            }
        }
        self.any.store(!keys.is_empty(), Ordering::Release);
        *self.keys.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(keys);
    }

    /// Notes that the database's secrets were just read in full.
    pub fn mark_db_synced(&self) {
        *self.db_synced.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
    }

    /// How old the database's secrets in memory may be: since the last full
    /// read (since start when there was none).
    pub fn db_age(&self) -> Duration {
        let synced = *self.db_synced.lock().unwrap_or_else(|e| e.into_inner());
        synced.unwrap_or(self.started).elapsed()
    }

    /// Sets the gauges (`db`: whether database secrets are used).
    pub fn record_metrics(&self, db: bool) {
        let sources = self.sources.lock().unwrap_or_else(|e| e.into_inner());
        let mut unreadable = 0usize;
        for source in [Source::File, Source::Database] {
            let of_source = sources.get(&source);
            let n = of_source.map_or(0, HashMap::len);
            unreadable += of_source.map_or(0, |m| {
                m.values()
                    .filter(|k| matches!(k, PortalKey::Unreadable))
                    .count()
            });
            metrics::gauge!("ingest_webhook_secrets", "source" => source.as_str()).set(n as f64);
        }
        metrics::gauge!("ingest_webhook_secrets_unreadable").set(unreadable as f64);
        if db {
            metrics::gauge!("ingest_webhook_secrets_age_seconds").set(self.db_age().as_secs_f64());
        }
    }
}

/// Counts a failed refresh of `source`.
pub(crate) fn refresh_failed(source: Source) {
    metrics::counter!("ingest_webhook_secrets_refresh_failures_total", "source" => source.as_str())
        .increment(1);
}

#[cfg(test)]
mod tests;
