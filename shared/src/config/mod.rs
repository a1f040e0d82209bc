//! Layered configuration: built-in defaults, then an optional TOML file, then
//! `CONNECTOR_*` environment variables (the last one wins).
//!
//! One flat [`Settings`] struct serves every process so the configuration
//! reference (docs/src/reference/configuration.md) is a single table; each
//! process checks the parts it needs with [`Settings::validate_ingest`] /
//! [`Settings::validate_console`] / [`Settings::validate_worker`].

use std::{collections::BTreeMap, net::SocketAddr, path::Path};

use figment::{
    Figment,
    providers::{Format, Serialized, Toml},
};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use de::{lenient, text_or_number};

/// Environment variable naming an optional TOML configuration file.
pub const CONFIG_FILE_ENV: &str = "CONNECTOR_CONFIG";

/// Output format of the logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Coloured, one line per event, for people.
    #[default]
    Human,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Every setting of the connector. Field names are the environment variable
/// names without the `CONNECTOR_` prefix, lower-cased.
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    /// RabbitMQ URL, or the URLs of a cluster's nodes separated by commas
    /// (processes start at a random node and move to another when theirs
    /// is lost).
    pub amqp_url: String,
    /// `x-quorum-initial-group-size` of the queues when they are created;
    /// 0: derived from `amqp_url` (3 when it names three nodes or more,
    /// else the broker's default) (`broker::Topology::from_settings`).
    #[serde(deserialize_with = "lenient")]
    pub quorum_initial_group_size: u32,
    /// Prefix for every exchange and queue name (tests isolate themselves with it).
    pub queue_prefix: String,
    /// HubSpot app client secret: the key of OAuth and the default key of
    /// webhook signatures (portals without a secret of their own).
    pub hubspot_client_secret: Option<SecretString>,
    /// Per-portal webhook secrets (private apps) in a file ingest watches:
    /// one `PORTAL_ID=SECRET` per line; `#` comments and blank lines ignored.
    #[serde(default)]
    pub webhook_secrets_file: Option<String>,
    /// Ingest reads per-portal webhook secrets from the database (set with
    /// the portal document's `hubspot.webhook_secret`), in the background.
    #[serde(deserialize_with = "lenient")]
    pub webhook_secrets_db: bool,
    /// Seconds between ingest's full reloads of the database's webhook
    /// secrets (changes arrive at once through NOTIFY; this is the safety net).
    #[serde(deserialize_with = "lenient")]
    pub webhook_secrets_refresh_secs: u64,
    /// HubSpot app client id (OAuth).
    pub hubspot_client_id: Option<String>,
    /// The public app's id (`worker subscriptions --apply`: the app whose
    /// webhook subscriptions are managed through HubSpot's Webhooks API).
    /// Text here (a TOML number is taken too); the command checks it is
    /// numeric, naming the variable.
    #[serde(default, deserialize_with = "text_or_number")]
    pub hubspot_app_id: Option<String>,
    /// The developer account's API key that may manage that app's webhooks
    /// (`worker subscriptions --apply` only; never logged).
    #[serde(default)]
    pub hubspot_developer_api_key: Option<SecretString>,
    /// HubSpot's OAuth authorize page (the sandbox's in tests).
    pub hubspot_authorize_url: String,
    /// Operator bearer token: the admin API (`/admin/api/...`) and the
    /// website's JSON API for every portal, named `admin` in the audit log.
    /// Unset, empty or blank: none; set, at least 32 bytes
    /// ([`operators`]).
    #[serde(default)]
    pub admin_token: Option<SecretString>,
    /// Named operator tokens, `name:token,name:token` (each at least 32 bytes).
    #[serde(default)]
    pub admin_tokens: Option<SecretString>,
    /// A file of named operator tokens: one `name:token` per line, `#` comments.
    #[serde(default)]
    pub admin_tokens_file: Option<String>,
    /// Failed operator-token attempts of one client (IP, IPv6 /64) per
    /// window before it is locked out for the window (429, `Retry-After`).
    #[serde(deserialize_with = "lenient")]
    pub admin_auth_max_failures: u32,
    /// Failed attempts of all clients per window before all are locked out.
    #[serde(deserialize_with = "lenient")]
    pub admin_auth_max_failures_global: u32,
    /// The failure window and the lockout, in seconds.
    #[serde(deserialize_with = "lenient")]
    pub admin_auth_lockout_secs: u64,
    /// Address the ingest HTTP server listens on.
    pub ingest_addr: SocketAddr,
    /// Address the console (the connector website and `/api/v1`) listens on.
    pub console_addr: SocketAddr,
    /// Address of the console's admin listener (the admin API
    /// `/admin/api/...` and `/metrics`); unset: `127.0.0.1:8091` when an
    /// operator token is set, else no admin listener
    /// ([`Settings::admin_listen_addr`]).
    #[serde(default)]
    pub admin_addr: Option<SocketAddr>,
    /// Public base URL of the console (the OAuth redirect URL is derived
    /// from it); unset: `CONNECTOR_PUBLIC_URL`.
    #[serde(default)]
    pub console_public_url: Option<String>,
    /// Public base URL of the admin listener as operators' browsers reach
    /// it (`CONNECTOR_ADMIN_PUBLIC_URL`): when https, the operators'
    /// pages' session cookie is `Secure` with the `__Host-` prefix.
    #[serde(default)]
    pub admin_public_url: Option<String>,
    /// Public base URL HubSpot calls (scheme, host, optional port), used to
    /// rebuild the URI covered by v3 signatures. Unset: taken from the
    /// request's `Host` header with `http://`.
    pub public_url: Option<String>,
    /// Accept v1 signatures (`X-HubSpot-Signature`, no timestamp) when no v3
    /// headers are present.
    #[serde(deserialize_with = "lenient")]
    pub accept_signature_v1: bool,
    /// Accept v2 signatures (workflow webhook actions) when no v3 headers are present.
    #[serde(deserialize_with = "lenient")]
    pub accept_signature_v2: bool,
    /// Largest accepted webhook body, in bytes.
    #[serde(deserialize_with = "lenient")]
    pub max_body_bytes: usize,
    /// Largest number of events in one webhook request (HubSpot sends at most 100).
    #[serde(deserialize_with = "lenient")]
    pub max_batch_events: usize,
    /// The HTTP listeners' timeouts and caps (`CONNECTOR_HTTP_*`).
    #[serde(flatten)]
    pub edge: EdgeSettings,
    /// How old (or how far in the future) a v3 timestamp may be, in seconds.
    #[serde(deserialize_with = "lenient")]
    pub signature_max_age_secs: u64,
    /// How long ingest waits for RabbitMQ to confirm a request's messages
    /// before answering 503, in milliseconds.
    #[serde(deserialize_with = "lenient")]
    pub publish_timeout_ms: u64,
    /// Number of AMQP channels ingest publishes on.
    #[serde(deserialize_with = "lenient")]
    pub publisher_channels: usize,
    /// Quorum-queue delivery limit of the work queue: a message redelivered
    /// this many times (crashes, panics) is dead-lettered.
    #[serde(deserialize_with = "lenient")]
    pub delivery_limit: u32,
    /// Delays of the retry ladder, comma-separated (`10s,1m,10m,1h,6h,24h`).
    pub retry_schedule: String,
    /// PostgreSQL URL (worker, website).
    pub database_url: String,
    /// PostgreSQL URL of the connections that hold session state: `LISTEN`
    /// and the migrations (sqlx takes a session advisory lock). Unset or
    /// blank: `database_url`, whose pool then does both. Set, `database_url`
    /// may point at PgBouncer in transaction mode and this one straight at
    /// PostgreSQL ([`Settings::direct_database_url`]).
    #[serde(default)]
    pub database_direct_url: Option<String>,
    /// Base64 of the 32-byte AES-256-GCM key that encrypts stored secrets.
    pub encryption_key: Option<SecretString>,
    /// Id (1..=255) stored with every value sealed by `encryption_key`.
    #[serde(deserialize_with = "lenient")]
    pub encryption_key_id: u8,
    /// Earlier keys still readable during a rotation: `id:base64,id:base64`.
    pub encryption_old_keys: Option<SecretString>,
    /// HubSpot API base URL.
    pub hubspot_api_url: String,
    /// impact.com API base URL.
    pub impact_api_url: String,
    /// Processed webhook events (the dedupe record) are pruned after this many
    /// days (at least 2; 0 keeps them).
    #[serde(deserialize_with = "lenient")]
    pub retention_events_days: u32,
    /// Delivered conversions are pruned after this many days (0 keeps them:
    /// a pruned conversion's OrderId could be sent again).
    #[serde(deserialize_with = "lenient")]
    pub retention_conversions_days: u32,
    /// Seconds between pruning passes in `worker run`.
    #[serde(deserialize_with = "lenient")]
    pub prune_interval_secs: u64,
    /// Log format: `human` or `json`.
    pub log_format: LogFormat,
    /// Log filter in `tracing_subscriber::EnvFilter` syntax.
    pub log: String,
    /// Grace period for in-flight work at shutdown, in seconds.
    #[serde(deserialize_with = "lenient")]
    pub shutdown_grace_secs: u64,
    /// Messages a worker process holds unacknowledged and processes
    /// concurrently (AMQP prefetch).
    #[serde(deserialize_with = "lenient")]
    pub worker_prefetch: u16,
    /// Where the worker serves `GET /metrics` (Prometheus text); unset: not served.
    #[serde(default)]
    pub worker_metrics_addr: Option<SocketAddr>,
    /// In-process retries of a transient failure before the message goes
    /// to the retry ladder.
    #[serde(deserialize_with = "lenient")]
    pub retry_inprocess_attempts: u32,
    /// First in-process backoff delay, in milliseconds (doubles, with jitter).
    #[serde(deserialize_with = "lenient")]
    pub retry_inprocess_base_ms: u64,
    /// Longest wait retried in process (backoff or `Retry-After`), in
    /// milliseconds; a longer one goes to the retry ladder.
    #[serde(deserialize_with = "lenient")]
    pub retry_inprocess_max_wait_ms: u64,
    /// Dead letters replayed per second by a bulk replay.
    #[serde(deserialize_with = "lenient")]
    pub replay_rate_per_sec: u32,
    /// Lease of a dead letter taken by a replay, in seconds: renewed while
    /// the replay runs; once expired (the worker died) the dead letter may
    /// be replayed or discarded again.
    #[serde(deserialize_with = "lenient")]
    pub replay_lease_secs: u64,
    /// Messages a worker process works on at once (the rest of the
    /// prefetched ones wait, fairly across portals).
    #[serde(deserialize_with = "lenient")]
    pub worker_concurrency: u16,
    /// Messages of one portal a worker process works on at once, so a noisy
    /// portal cannot take every slot.
    #[serde(deserialize_with = "lenient")]
    pub worker_portal_concurrency: u16,
    /// Messages of one portal a worker holds (working or waiting); more are
    /// deferred through the first retry queue so other portals' messages
    /// behind them in the queue are reached. 0: never defer.
    #[serde(deserialize_with = "lenient")]
    pub worker_portal_backlog: u16,
    /// Events of one message processed at once (different objects; events
    /// of one object stay in order).
    #[serde(deserialize_with = "lenient")]
    pub worker_event_concurrency: u16,
    /// impact.com submissions a delivery batch has in flight at once (one
    /// portal has at most two batches posting); 0: event concurrency ×
    /// portal concurrency / 2.
    #[serde(deserialize_with = "lenient")]
    pub worker_delivery_concurrency: u16,
    /// Length of a delivery's lease on the rows it posts, in seconds
    /// (renewed every third of it while held; after a crash another worker
    /// may take the rows over once it has run out).
    #[serde(deserialize_with = "lenient")]
    pub delivery_lease_secs: u64,
    /// PostgreSQL connections of a worker process.
    #[serde(deserialize_with = "lenient")]
    pub worker_db_connections: u32,
    /// Longest wait of a worker's query for a free connection (or for the
    /// server to accept one), in seconds, before it fails as
    /// `database_unavailable` (and the message is retried).
    #[serde(deserialize_with = "lenient")]
    pub worker_db_acquire_timeout_secs: u64,
    /// PostgreSQL connections of the console (the website, its API and the
    /// admin API share them).
    #[serde(deserialize_with = "lenient")]
    pub console_db_connections: u32,
    /// Worker processes the deployment runs at most, for the connection
    /// budget's start-up check; 0: the workers connected at the time.
    #[serde(deserialize_with = "lenient")]
    pub expected_workers: u32,
    /// Follow delivered conversions' submissions (`APISubmissions`) in
    /// `worker run` until impact.com completes them.
    #[serde(deserialize_with = "lenient")]
    pub outcomes_poll: bool,
    /// Seconds after delivery of the first look at a submission, and between
    /// the poller's passes; later looks at the same submission back off
    /// (doubling) up to `outcomes_max_backoff_secs`.
    #[serde(deserialize_with = "lenient")]
    pub outcomes_poll_interval_secs: u64,
    /// Longest wait between two looks at the same submission, in seconds.
    #[serde(deserialize_with = "lenient")]
    pub outcomes_max_backoff_secs: u64,
    /// Days after delivery when the poller gives up on a submission that
    /// is still not complete (outcome `unknown`).
    #[serde(deserialize_with = "lenient")]
    pub outcomes_give_up_days: u32,
    /// Share (percent) of an account's impact.com hourly request budget the
    /// poller leaves to deliveries: it stops polling an account whose
    /// `X-RateLimit-Remaining` is below this share of `X-RateLimit-Limit`.
    #[serde(deserialize_with = "lenient")]
    pub outcomes_reserve_percent: u8,
    /// Submissions looked at per poller pass (per worker).
    #[serde(deserialize_with = "lenient")]
    pub outcomes_batch: u32,
    /// Seconds after delivery during which a conversion is decided from the
    /// listing of its program's actions (one read for many conversions);
    /// after it, a conversion still without an action has its own
    /// submission read. 0: no listing, every submission is read.
    #[serde(deserialize_with = "lenient")]
    pub outcomes_grace_secs: u64,
    /// Erase what we hold about a contact on `contact.deletion` too (it is
    /// always erased on `contact.privacyDeletion`).
    #[serde(deserialize_with = "lenient")]
    pub privacy_erase_on_deletion: bool,
}

/// Defaults, kept apart from [`Settings`] so secrets never need a `Serialize`.
#[derive(Serialize)]
struct Defaults {
    amqp_url: &'static str,
    quorum_initial_group_size: u32,
    queue_prefix: &'static str,
    webhook_secrets_db: bool,
    webhook_secrets_refresh_secs: u64,
    ingest_addr: &'static str,
    console_addr: &'static str,
    accept_signature_v1: bool,
    accept_signature_v2: bool,
    max_body_bytes: usize,
    max_batch_events: usize,
    #[serde(flatten)]
    edge: edge::EdgeDefaults,
    signature_max_age_secs: u64,
    publish_timeout_ms: u64,
    publisher_channels: usize,
    delivery_limit: u32,
    retry_schedule: &'static str,
    database_url: &'static str,
    encryption_key_id: u8,
    hubspot_authorize_url: &'static str,
    hubspot_api_url: &'static str,
    impact_api_url: &'static str,
    retention_events_days: u32,
    retention_conversions_days: u32,
    prune_interval_secs: u64,
    log_format: LogFormat,
    log: &'static str,
    shutdown_grace_secs: u64,
    worker_prefetch: u16,
    retry_inprocess_attempts: u32,
    retry_inprocess_base_ms: u64,
    retry_inprocess_max_wait_ms: u64,
    replay_rate_per_sec: u32,
    replay_lease_secs: u64,
    admin_auth_max_failures: u32,
    admin_auth_max_failures_global: u32,
    admin_auth_lockout_secs: u64,
    worker_concurrency: u16,
    worker_portal_concurrency: u16,
    worker_portal_backlog: u16,
    worker_event_concurrency: u16,
    worker_delivery_concurrency: u16,
    delivery_lease_secs: u64,
    worker_db_connections: u32,
    worker_db_acquire_timeout_secs: u64,
    console_db_connections: u32,
    expected_workers: u32,
    outcomes_poll: bool,
    outcomes_poll_interval_secs: u64,
    outcomes_max_backoff_secs: u64,
    outcomes_give_up_days: u32,
    outcomes_reserve_percent: u8,
    outcomes_batch: u32,
    outcomes_grace_secs: u64,
    privacy_erase_on_deletion: bool,
}

const DEFAULTS: Defaults = Defaults {
    amqp_url: "amqp://guest:guest@127.0.0.1:5672/%2f",
    quorum_initial_group_size: 0,
    queue_prefix: "",
    webhook_secrets_db: true,
    webhook_secrets_refresh_secs: 60,
    ingest_addr: "127.0.0.1:8080",
    console_addr: "127.0.0.1:8090",
    accept_signature_v1: false,
    accept_signature_v2: false,
    max_body_bytes: 1024 * 1024,
    max_batch_events: 100,
    edge: edge::EDGE_DEFAULTS,
    signature_max_age_secs: 300,
    publish_timeout_ms: 2000,
    publisher_channels: 4,
    delivery_limit: 5,
    retry_schedule: "10s,1m,10m,1h,6h,24h",
    database_url: "postgres://postgres@127.0.0.1:5432/test",
    encryption_key_id: 1,
    hubspot_authorize_url: "https://app.hubspot.com/oauth/authorize",
    hubspot_api_url: "https://api.hubapi.com",
    impact_api_url: "https://api.impact.com",
    retention_events_days: 30,
    retention_conversions_days: 0,
    prune_interval_secs: 3600,
    log_format: LogFormat::Human,
    log: "info",
    shutdown_grace_secs: 25,
    retry_inprocess_attempts: 3,
    retry_inprocess_base_ms: 200,
    retry_inprocess_max_wait_ms: 2000,
    replay_rate_per_sec: 10,
    replay_lease_secs: 300,
    admin_auth_max_failures: 10,
    admin_auth_max_failures_global: 100,
    admin_auth_lockout_secs: 300,
    worker_prefetch: 1024,
    worker_concurrency: 16,
    worker_portal_concurrency: 8,
    worker_portal_backlog: 768,
    worker_event_concurrency: 48,
    worker_delivery_concurrency: 128,
    delivery_lease_secs: 30,
    worker_db_connections: 8,
    worker_db_acquire_timeout_secs: 120,
    console_db_connections: 4,
    expected_workers: 0,
    outcomes_poll: true,
    outcomes_poll_interval_secs: 60,
    outcomes_max_backoff_secs: 3600,
    outcomes_give_up_days: 7,
    outcomes_reserve_percent: 50,
    outcomes_batch: 100,
    outcomes_grace_secs: 1800,
    privacy_erase_on_deletion: false,
};

/// A setting that is missing or malformed.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The layers could not be read or do not fit the types.
    #[error("configuration: {0}")]
    Load(#[from] Box<figment::Error>),
    /// A value has the right type but is not acceptable.
    #[error("configuration: {name}: {problem}")]
    Invalid {
        /// The environment variable concerned.
        name: &'static str,
        /// What is wrong with it.
        problem: String,
    },
}

impl Settings {
    /// Loads defaults, then the file named by `CONNECTOR_CONFIG` (if set),
    /// then the `CONNECTOR_*` environment.
    pub fn load() -> Result<Self, ConfigError> {
        // The first thing every process does: HTTPS clients need this.
        crate::tls::install_crypto_provider();
        let file = std::env::var_os(CONFIG_FILE_ENV);
        Self::figment(file.as_deref().map(Path::new), std::env::vars())
            .extract()
            .map_err(|e| ConfigError::Load(Box::new(e)))
    }

    /// Defaults only (tests start from these and override fields).
    pub fn defaults() -> Self {
        crate::tls::install_crypto_provider();
        Figment::from(Serialized::defaults(DEFAULTS))
            .extract()
            .expect("built-in defaults are valid")
    }

    fn figment(file: Option<&Path>, env: impl Iterator<Item = (String, String)>) -> Figment {
        let mut fig = Figment::from(Serialized::defaults(DEFAULTS));
        if let Some(path) = file {
            fig = fig.merge(Toml::file_exact(path));
        }
        // Environment values are kept as strings (figment's own `Env` would
        // turn a secret like "0042" into the number 42); typed fields such as
        // booleans and sizes still parse from their string form.
        let vars: BTreeMap<String, String> = env
            .filter_map(|(k, v)| Some((k.strip_prefix("CONNECTOR_")?.to_lowercase(), v)))
            .filter(|(k, _)| k != "config")
            .collect();
        fig.merge(Serialized::defaults(vars))
    }
}

mod checks;
mod de;
mod edge;
pub mod operators;

pub use checks::{DEFAULT_ADMIN_ADDR, parse_schedule};
pub use edge::EdgeSettings;
pub use operators::OperatorTokens;

#[cfg(test)]
mod tests;
