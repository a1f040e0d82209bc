//! What each process checks of its [`Settings`] at start-up, and the
//! values derived from them (the retry ladder, the publish timeout).

use std::{
    net::{Ipv4Addr, SocketAddr},
    time::Duration,
};

use domain::retry::RetryLadder;
use secrecy::SecretString;

use super::{ConfigError, OperatorTokens, Settings};

/// The admin listener's address when an operator token is set and
/// `CONNECTOR_ADMIN_ADDR` is not: loopback only.
pub const DEFAULT_ADMIN_ADDR: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 8091);

/// Whether two listen addresses would be the same socket (same port, not
/// 0 which picks a free one, and the same IP or either one all interfaces).
fn clash(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() == b.port()
        && a.port() != 0
        && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}

impl Settings {
    /// The retry ladder's delays, in order.
    pub fn retry_delays(&self) -> Result<Vec<Duration>, ConfigError> {
        parse_schedule(&self.retry_schedule).map_err(|problem| ConfigError::Invalid {
            name: "CONNECTOR_RETRY_SCHEDULE",
            problem,
        })
    }

    /// How long ingest waits for broker confirms.
    pub fn publish_timeout(&self) -> Duration {
        Duration::from_millis(self.publish_timeout_ms)
    }

    /// The secrets file ingest watches, when one is configured.
    pub fn webhook_secrets_path(&self) -> Option<&str> {
        self.webhook_secrets_file
            .as_deref()
            .map(str::trim)
            .filter(|p| !p.is_empty())
    }

    /// The app's client secret (the key of OAuth, and of webhooks signed
    /// by the public app): `None` when unset. Set but empty or short, it
    /// is refused (anyone could sign with it), never taken as "unset".
    pub fn client_secret(&self) -> Result<Option<&SecretString>, ConfigError> {
        use secrecy::ExposeSecret as _;
        match &self.hubspot_client_secret {
            None => Ok(None),
            Some(s) => match domain::signature::check_secret(s.expose_secret()) {
                Ok(_) => Ok(Some(s)),
                Err(e) => Err(ConfigError::Invalid {
                    name: "CONNECTOR_HUBSPOT_CLIENT_SECRET",
                    problem: format!(
                        "{e}; set the HubSpot app's client secret, or leave the variable \
                         unset when every portal has a webhook secret of its own"
                    ),
                }),
            },
        }
    }

    /// Checks what the ingest process needs.
    pub fn validate_ingest(&self) -> Result<(), ConfigError> {
        self.client_secret()?;
        self.check_direct_database_url()?;
        self.edge
            .validate_ingest(self.max_body_bytes, self.publish_timeout_ms)?;
        if self.hubspot_client_secret.is_none()
            && self.webhook_secrets_path().is_none()
            && !self.webhook_secrets_db
        {
            return Err(ConfigError::Invalid {
                name: "CONNECTOR_HUBSPOT_CLIENT_SECRET",
                problem: "required: the HubSpot app's client secret signs webhooks (unless \
                          per-portal secrets come from CONNECTOR_WEBHOOK_SECRETS_FILE or \
                          CONNECTOR_WEBHOOK_SECRETS_DB)"
                    .into(),
            });
        }
        if self.webhook_secrets_db && self.webhook_secrets_refresh_secs == 0 {
            return Err(ConfigError::Invalid {
                name: "CONNECTOR_WEBHOOK_SECRETS_REFRESH_SECS",
                problem: "must be at least 1".into(),
            });
        }
        if let Some(url) = &self.public_url {
            let parsed = url::Url::parse(url).map_err(|e| ConfigError::Invalid {
                name: "CONNECTOR_PUBLIC_URL",
                problem: format!("not a URL ({e}); expected e.g. https://connector.example.com"),
            })?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(ConfigError::Invalid {
                    name: "CONNECTOR_PUBLIC_URL",
                    problem: "must start with http:// or https://".into(),
                });
            }
        }
        if self.max_batch_events == 0 || self.max_body_bytes == 0 {
            return Err(ConfigError::Invalid {
                name: "CONNECTOR_MAX_BODY_BYTES",
                problem: "limits must be positive".into(),
            });
        }
        if self.publisher_channels == 0 {
            return Err(ConfigError::Invalid {
                name: "CONNECTOR_PUBLISHER_CHANNELS",
                problem: "must be at least 1".into(),
            });
        }
        self.retry_delays().map(|_| ())
    }

    /// Checks what the console process needs (the website itself reports
    /// its missing settings as 503 pages, as before).
    pub fn validate_console(&self) -> Result<(), ConfigError> {
        self.client_secret()?;
        self.check_direct_database_url()?;
        self.edge.validate()?;
        if self.console_db_connections < 2 {
            return Err(ConfigError::Invalid {
                name: "CONNECTOR_CONSOLE_DB_CONNECTIONS",
                problem: "must be at least 2".into(),
            });
        }
        for (name, url) in [
            ("CONNECTOR_CONSOLE_PUBLIC_URL", &self.console_public_url),
            ("CONNECTOR_PUBLIC_URL", &self.public_url),
            ("CONNECTOR_ADMIN_PUBLIC_URL", &self.admin_public_url),
        ] {
            if let Some(url) = url
                && !url::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
            {
                return Err(ConfigError::Invalid {
                    name,
                    problem: "not an http(s) URL; expected e.g. https://connector.example.com"
                        .into(),
                });
            }
        }
        let tokens = self.operator_tokens()?;
        self.check_admin_auth()?;
        if let Some(admin) = self.admin_listen_addr(&tokens) {
            for (name, other) in [
                ("CONNECTOR_CONSOLE_ADDR", self.console_addr),
                ("CONNECTOR_INGEST_ADDR", self.ingest_addr),
            ] {
                if clash(admin, other) {
                    return Err(ConfigError::Invalid {
                        name: "CONNECTOR_ADMIN_ADDR",
                        problem: format!(
                            "{admin} is {name}'s address too: the admin API needs a listener of its own"
                        ),
                    });
                }
            }
        }
        self.retry_delays().map(|_| ())
    }

    fn check_admin_auth(&self) -> Result<(), ConfigError> {
        for (name, value) in [
            (
                "CONNECTOR_ADMIN_AUTH_MAX_FAILURES",
                u64::from(self.admin_auth_max_failures),
            ),
            (
                "CONNECTOR_ADMIN_AUTH_MAX_FAILURES_GLOBAL",
                u64::from(self.admin_auth_max_failures_global),
            ),
            (
                "CONNECTOR_ADMIN_AUTH_LOCKOUT_SECS",
                self.admin_auth_lockout_secs,
            ),
        ] {
            if value == 0 {
                return Err(ConfigError::Invalid {
                    name,
                    problem: "must be at least 1".into(),
                });
            }
        }
        Ok(())
    }

    /// Where the console's admin listener (admin API and `/metrics`)
    /// listens: `CONNECTOR_ADMIN_ADDR` when set, else [`DEFAULT_ADMIN_ADDR`]
    /// when an operator token is set; `None`: no admin listener.
    pub fn admin_listen_addr(&self, tokens: &OperatorTokens) -> Option<SocketAddr> {
        self.admin_addr
            .or_else(|| (!tokens.is_empty()).then_some(DEFAULT_ADMIN_ADDR))
    }

    /// `CONNECTOR_DATABASE_DIRECT_URL` when it is set (not blank) and is
    /// not `CONNECTOR_DATABASE_URL` itself: `LISTEN` and the migrations
    /// then connect there, apart from the main pool.
    pub fn direct_database_url(&self) -> Option<&str> {
        self.database_direct_url
            .as_deref()
            .map(str::trim)
            .filter(|u| !u.is_empty() && *u != self.database_url)
    }

    /// Checks that the direct URL, when set, is a PostgreSQL URL (the main
    /// one is checked where its pool is opened).
    fn check_direct_database_url(&self) -> Result<(), ConfigError> {
        let Some(url) = self.direct_database_url() else {
            return Ok(());
        };
        let invalid = |why: String| ConfigError::Invalid {
            name: "CONNECTOR_DATABASE_DIRECT_URL",
            problem: format!(
                "not a PostgreSQL URL ({why}); expected e.g. postgres://connector@db.example:5432/connector"
            ),
        };
        let scheme = url::Url::parse(url).map_err(|e| invalid(e.to_string()))?;
        if !matches!(scheme.scheme(), "postgres" | "postgresql") {
            return Err(invalid("it must start with postgres://".into()));
        }
        url.parse::<sqlx::postgres::PgConnectOptions>()
            .map(|_| ())
            .map_err(|e| invalid(e.to_string()))
    }

    /// The lease of a dead letter taken by a replay.
    pub fn replay_lease(&self) -> Duration {
        Duration::from_secs(self.replay_lease_secs.max(1))
    }

    /// impact.com submissions one delivery batch has in flight
    /// (`CONNECTOR_WORKER_DELIVERY_CONCURRENCY`; 0: event concurrency ×
    /// portal concurrency / `batches_per_portal`, the batches of one portal
    /// posting at once).
    pub fn delivery_concurrency(&self, batches_per_portal: usize) -> usize {
        match self.worker_delivery_concurrency {
            0 => (usize::from(self.worker_event_concurrency.max(1))
                * usize::from(self.worker_portal_concurrency.max(1))
                / batches_per_portal.max(1))
            .max(1),
            n => usize::from(n),
        }
    }

    /// A delivery's lease on its rows (`CONNECTOR_DELIVERY_LEASE_SECS`).
    pub fn delivery_lease(&self) -> Duration {
        Duration::from_secs(self.delivery_lease_secs.max(3))
    }

    /// Checks what the worker process needs.
    pub fn validate_worker(&self) -> Result<(), ConfigError> {
        self.client_secret()?;
        self.check_direct_database_url()?;
        if self.worker_prefetch == 0 {
            return Err(ConfigError::Invalid {
                name: "CONNECTOR_WORKER_PREFETCH",
                problem: "must be at least 1".into(),
            });
        }
        for (name, value) in [
            ("CONNECTOR_WORKER_CONCURRENCY", self.worker_concurrency),
            (
                "CONNECTOR_WORKER_PORTAL_CONCURRENCY",
                self.worker_portal_concurrency,
            ),
            (
                "CONNECTOR_WORKER_EVENT_CONCURRENCY",
                self.worker_event_concurrency,
            ),
        ] {
            if value == 0 {
                return Err(ConfigError::Invalid {
                    name,
                    problem: "must be at least 1".into(),
                });
            }
        }
        if self.outcomes_poll_interval_secs == 0 {
            return Err(ConfigError::Invalid {
                name: "CONNECTOR_OUTCOMES_POLL_INTERVAL_SECS",
                problem: "must be at least 1".into(),
            });
        }
        if self.outcomes_grace_secs > 86_400 {
            return Err(ConfigError::Invalid {
                name: "CONNECTOR_OUTCOMES_GRACE_SECS",
                problem:
                    "must be at most 86400 (a day): every listing reads the actions of this window"
                        .into(),
            });
        }
        if self.outcomes_reserve_percent > 95 {
            return Err(ConfigError::Invalid {
                name: "CONNECTOR_OUTCOMES_RESERVE_PERCENT",
                problem: "must be at most 95 (the poller needs some of the budget)".into(),
            });
        }
        if self.replay_lease_secs == 0 || self.replay_lease_secs > 86_400 {
            return Err(ConfigError::Invalid {
                name: "CONNECTOR_REPLAY_LEASE_SECS",
                problem: "must be between 1 and 86400".into(),
            });
        }
        if !(3..=3600).contains(&self.delivery_lease_secs) {
            return Err(ConfigError::Invalid {
                name: "CONNECTOR_DELIVERY_LEASE_SECS",
                problem: "must be between 3 and 3600".into(),
            });
        }
        if self.worker_db_connections < 2 {
            return Err(ConfigError::Invalid {
                name: "CONNECTOR_WORKER_DB_CONNECTIONS",
                problem: "must be at least 2".into(),
            });
        }
        if self.worker_db_acquire_timeout_secs == 0 || self.worker_db_acquire_timeout_secs > 3600 {
            return Err(ConfigError::Invalid {
                name: "CONNECTOR_WORKER_DB_ACQUIRE_TIMEOUT_SECS",
                problem: "must be between 1 and 3600".into(),
            });
        }
        if self.worker_portal_backlog != 0 && self.worker_portal_backlog >= self.worker_prefetch {
            return Err(ConfigError::Invalid {
                name: "CONNECTOR_WORKER_PORTAL_BACKLOG",
                problem: format!(
                    "must be below CONNECTOR_WORKER_PREFETCH ({}), or other portals' messages cannot be reached",
                    self.worker_prefetch
                ),
            });
        }
        self.retry_delays().map(|_| ())
    }
}

/// Parses `10s,1m,10m` into the retry ladder's delays ([`RetryLadder`]).
pub fn parse_schedule(text: &str) -> Result<Vec<Duration>, String> {
    RetryLadder::parse(text).map(RetryLadder::into_steps)
}
