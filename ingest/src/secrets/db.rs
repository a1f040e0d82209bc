//! Per-portal webhook secrets from PostgreSQL, read in the background only:
//! in full at start and every `CONNECTOR_WEBHOOK_SECRETS_REFRESH_SECS`, and
//! one portal at a time when a configuration change is announced (`NOTIFY`
//! on the channel every portal change uses). At most two connections: one
//! listening (on `CONNECTOR_DATABASE_DIRECT_URL` when it is set, so the
//! reading one may go through PgBouncer in transaction mode), one reading.
//! A database that is down at start (or later)
//! leaves ingest serving what it has (the default secret, the file, the
//! last secrets read), with the staleness in its metrics.

use std::{collections::HashMap, sync::Arc, time::Duration};

use anyhow::bail;
use domain::events::PortalId;
use secrecy::ExposeSecret as _;
use shared::{
    config::Settings,
    crypto::{CryptoError, SecretCipher},
    db::{
        budget, direct,
        listen::{Change, ConfigListener, PgPool},
        webhook_secrets,
    },
};
use tokio_util::sync::CancellationToken;

use super::{PortalKey, Source, WebhookSecrets, refresh_failed};

/// Longest wait for the first read at start.
const START_TIMEOUT: Duration = Duration::from_secs(5);

/// The database side of the secrets.
pub struct DbSecrets {
    pool: PgPool,
    listen: PgPool,
    cipher: Option<SecretCipher>,
    secrets: Arc<WebhookSecrets>,
    refresh: Duration,
}

impl DbSecrets {
    /// Connects (lazily) and reads every secret once. Fails only when
    /// secrets are stored but `CONNECTOR_ENCRYPTION_KEY` is missing or
    /// malformed; an unreachable database is logged and ingest starts.
    pub async fn start(settings: &Settings, secrets: Arc<WebhookSecrets>) -> anyhow::Result<Self> {
        let cipher = match SecretCipher::from_settings(settings) {
            Ok(c) => Some(c),
            Err(CryptoError::MissingKey) => None,
            Err(e) => bail!("webhook secrets from the database: {e}"),
        };
        // One connection listens, one reads: one pool of both, or the
        // listening one on the direct URL and one reading through the
        // main URL.
        let direct = settings.direct_database_url().is_some();
        let pool = budget::lazy_named(
            &settings.database_url,
            budget::INGEST_APP,
            if direct {
                1
            } else {
                budget::INGEST_CONNECTIONS
            },
            START_TIMEOUT,
        )?;
        let listen = direct::listen_pool(settings, budget::INGEST_APP, &pool)?;
        let me = Self {
            pool,
            listen,
            cipher,
            secrets,
            refresh: Duration::from_secs(settings.webhook_secrets_refresh_secs.max(1)),
        };
        match tokio::time::timeout(START_TIMEOUT, webhook_secrets::sealed_all(&me.pool)).await {
            Ok(Ok(sealed)) => {
                if me.cipher.is_none() && !sealed.is_empty() {
                    bail!(
                        "CONNECTOR_ENCRYPTION_KEY is not set, but {} portal(s) have a webhook secret \
                         stored: ingest needs the key to read them (or set CONNECTOR_WEBHOOK_SECRETS_DB=false)",
                        sealed.len()
                    );
                }
                me.apply_all(sealed);
            }
            Ok(Err(e)) => me.unreachable(&e.to_string()),
            Err(_) => me.unreachable(&format!("no answer within {START_TIMEOUT:?}")),
        }
        Ok(me)
    }

    fn unreachable(&self, e: &str) {
        refresh_failed(Source::Database);
        tracing::warn!(error = %e, "database unreachable at start-up: webhooks are verified with \
            the default secret and the secrets file until it answers");
    }

    /// Opens every sealed secret and replaces the database's keys.
    fn apply_all(&self, sealed: Vec<(PortalId, Vec<u8>)>) {
        let keys: HashMap<u64, PortalKey> = sealed
            .into_iter()
            .map(|(portal, s)| (portal.0, self.open(portal, &s)))
            .collect();
        tracing::debug!(
            portals = keys.len(),
            "webhook secrets read from the database"
        );
        self.secrets.replace(Source::Database, keys);
        self.secrets.mark_db_synced();
    }

    fn open(&self, portal: PortalId, sealed: &[u8]) -> PortalKey {
        let Some(cipher) = &self.cipher else {
            tracing::error!(%portal, "a webhook secret is stored but CONNECTOR_ENCRYPTION_KEY is \
                not set: this portal's webhooks are refused");
            return PortalKey::Unreadable;
        };
        match webhook_secrets::open(cipher, portal, sealed) {
            // Stored before secrets had a minimum length: refused, never
            // replaced by the default secret.
            Ok(s) if domain::signature::check_secret(s.expose_secret()).is_err() => {
                tracing::error!(%portal, "the stored webhook secret is empty or too short: this \
                    portal's webhooks are refused until a real one is set");
                PortalKey::Unreadable
            }
            Ok(s) => PortalKey::Secret(s),
            Err(e) => {
                tracing::error!(%portal, error = %e, "webhook secret unreadable: this portal's \
                    webhooks are refused");
                PortalKey::Unreadable
            }
        }
    }

    async fn reload_all(&self) -> anyhow::Result<()> {
        let sealed = webhook_secrets::sealed_all(&self.pool).await?;
        self.apply_all(sealed);
        Ok(())
    }

    async fn reload_one(&self, portal: PortalId) -> anyhow::Result<()> {
        let sealed = webhook_secrets::sealed_one(&self.pool, portal).await?;
        let key = sealed.map(|s| self.open(portal, &s));
        self.secrets.update(Source::Database, portal, key);
        Ok(())
    }

    /// Follows the database until `shutdown`, reconnecting as needed.
    pub fn spawn(self, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut backoff = Duration::from_secs(1);
            loop {
                let e = tokio::select! {
                    () = shutdown.cancelled() => return,
                    e = self.follow() => e,
                };
                refresh_failed(Source::Database);
                tracing::warn!(error = %e, "webhook secrets: database connection lost; retrying");
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(self.refresh);
            }
        })
    }

    /// Listens, reads everything once, then follows notifications and the
    /// periodic reload; returns when the listening connection fails.
    async fn follow(&self) -> anyhow::Error {
        let mut listener = match ConfigListener::connect(&self.listen).await {
            Ok(l) => l,
            Err(e) => return e.into(),
        };
        // Changes made while nobody listened are unknown: read everything.
        if let Err(e) = self.reload_all().await {
            return e;
        }
        let mut tick = tokio::time::interval(self.refresh);
        tick.reset();
        loop {
            let done = tokio::select! {
                _ = tick.tick() => self.reload_all().await,
                change = listener.next() => match change {
                    Ok(Change::Portal(portal)) => self.reload_one(portal).await,
                    Ok(Change::Everything) => self.reload_all().await,
                    Err(e) => return e.into(),
                },
            };
            if let Err(e) = done {
                refresh_failed(Source::Database);
                tracing::warn!(error = %e, "webhook secrets: reading the database failed");
            }
        }
    }
}
