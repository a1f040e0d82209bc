//! The PostgreSQL connection budget: every process names its connections
//! (`application_name`), and a worker compares at start what the
//! deployment's pools may open with what the server allows
//! (`max_connections`), warning when they do not fit.

use std::time::Duration;

use sqlx::{
    PgPool,
    postgres::{PgConnectOptions, PgPoolOptions},
};

/// `application_name` prefix of a worker's connections (then its host and
/// process id, so the workers can be counted in `pg_stat_activity`).
pub const WORKER_APP: &str = "connector-worker";
/// `application_name` of the console's connections.
pub const CONSOLE_APP: &str = "connector-console";
/// `application_name` of ingest's connections (the webhook secrets).
pub const INGEST_APP: &str = "connector-ingest";
/// Connections ingest opens when it reads webhook secrets from the
/// database: one listening for changes, one reading.
pub const INGEST_CONNECTIONS: u32 = 2;

/// This worker's `application_name`: `connector-worker <host> <pid>`.
pub fn worker_app_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".into());
    let mut name = format!("{WORKER_APP} {host} {}", std::process::id());
    // PostgreSQL keeps 63 bytes of it.
    while name.len() > 63 {
        name.remove(WORKER_APP.len() + 1);
    }
    name
}

/// Connect options of `url`, named `app` unless the URL names itself
/// (`?application_name=`).
pub fn options(url: &str, app: &str) -> Result<PgConnectOptions, sqlx::Error> {
    let options: PgConnectOptions = url.parse()?;
    Ok(if options.get_application_name().is_some() {
        options
    } else {
        options.application_name(app)
    })
}

/// A pool of at most `max` connections named `app`, opened on first use;
/// a caller waits up to `acquire_timeout` for a free connection (or for
/// the server to accept one) before the query fails.
pub fn lazy_named(
    url: &str,
    app: &str,
    max: u32,
    acquire_timeout: Duration,
) -> Result<PgPool, sqlx::Error> {
    Ok(PgPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(acquire_timeout)
        .connect_lazy_with(options(url, app)?))
}

/// What the server allows and what is connected now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    /// `max_connections`.
    pub max_connections: u32,
    /// `superuser_reserved_connections` (not available to the connector's
    /// role unless it is a superuser; counted out to be safe).
    pub reserved: u32,
    /// Client connections open now (every application).
    pub connected: u32,
    /// Distinct worker processes connected now (this one included).
    pub workers_connected: u32,
}

impl ServerLimits {
    /// Reads the limits through `pool`.
    pub async fn read(pool: &PgPool) -> Result<Self, sqlx::Error> {
        let setting = |name: &'static str| async move {
            let v: String = sqlx::query_scalar("SELECT current_setting($1)")
                .bind(name)
                .fetch_one(pool)
                .await?;
            Ok::<u32, sqlx::Error>(v.trim().parse().unwrap_or(0))
        };
        let max_connections = setting("max_connections").await?;
        let reserved = setting("superuser_reserved_connections").await?;
        let (connected, workers): (i64, i64) = sqlx::query_as(
            "SELECT count(*) FILTER (WHERE backend_type = 'client backend'), \
                    count(DISTINCT application_name) FILTER (WHERE application_name LIKE $1) \
             FROM pg_stat_activity",
        )
        .bind(format!("{WORKER_APP} %"))
        .fetch_one(pool)
        .await?;
        Ok(Self {
            max_connections,
            reserved,
            connected: u32::try_from(connected).unwrap_or(u32::MAX),
            workers_connected: u32::try_from(workers).unwrap_or(u32::MAX),
        })
    }

    /// Connections the connector's role may open.
    pub fn available(&self) -> u32 {
        self.max_connections.saturating_sub(self.reserved)
    }
}

/// What a deployment's pools may open at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// Worker processes (`CONNECTOR_EXPECTED_WORKERS`, or those connected
    /// now when more).
    pub workers: u32,
    /// Each worker's pool (`CONNECTOR_WORKER_DB_CONNECTIONS`).
    pub worker_pool: u32,
    /// The console's pool (`CONNECTOR_CONSOLE_DB_CONNECTIONS`).
    pub console: u32,
    /// Ingest's ([`INGEST_CONNECTIONS`], or 0 without
    /// `CONNECTOR_WEBHOOK_SECRETS_DB`).
    pub ingest: u32,
}

impl Plan {
    /// `workers × worker_pool + console + ingest`.
    pub fn total(&self) -> u32 {
        self.workers
            .saturating_mul(self.worker_pool)
            .saturating_add(self.console)
            .saturating_add(self.ingest)
    }

    /// The start-up warning when the plan does not fit the server, or
    /// `None`.
    pub fn warning(&self, server: &ServerLimits) -> Option<String> {
        let total = self.total();
        let available = server.available();
        (total > available).then(|| {
            format!(
                "PostgreSQL connection budget exceeded: {} worker(s) × {} (CONNECTOR_WORKER_DB_CONNECTIONS) \
                 + console {} (CONNECTOR_CONSOLE_DB_CONNECTIONS) + ingest {} = {total} connections, but the server \
                 allows {available} (max_connections {} − superuser_reserved_connections {}; {} open now). \
                 Workers wait for a connection rather than fail, but a busy deployment stalls: lower the pools, \
                 raise max_connections, or put PgBouncer (transaction mode) in front of the workers",
                self.workers,
                self.worker_pool,
                self.console,
                self.ingest,
                server.max_connections,
                server.reserved,
                server.connected,
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(max: u32) -> ServerLimits {
        ServerLimits {
            max_connections: max,
            reserved: 3,
            connected: 10,
            workers_connected: 1,
        }
    }

    #[test]
    fn eight_workers_of_eight_fit_a_stock_server() {
        let plan = Plan {
            workers: 8,
            worker_pool: 8,
            console: 4,
            ingest: 2,
        };
        assert_eq!(plan.total(), 70);
        assert_eq!(plan.warning(&server(100)), None);
    }

    #[test]
    fn three_workers_of_the_old_default_do_not() {
        let plan = Plan {
            workers: 3,
            worker_pool: 48,
            console: 4,
            ingest: 2,
        };
        let warning = plan.warning(&server(100)).expect("warns");
        assert!(warning.contains("3 worker(s) × 48"), "{warning}");
        assert!(warning.contains("= 150 connections"), "{warning}");
        assert!(warning.contains("allows 97"), "{warning}");
    }

    #[test]
    fn a_long_host_name_is_cut_to_postgres_length() {
        let name = worker_app_name();
        assert!(name.starts_with("connector-worker "), "{name}");
        assert!(name.len() <= 63);
    }

    #[test]
    fn the_url_may_name_the_application_itself() {
        let named = options("postgres://u@h/db?application_name=mine", CONSOLE_APP).expect("valid");
        assert_eq!(named.get_application_name(), Some("mine"));
        let unnamed = options("postgres://u@h/db", CONSOLE_APP).expect("valid");
        assert_eq!(unnamed.get_application_name(), Some(CONSOLE_APP));
    }
}
