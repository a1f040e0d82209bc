//! The `worker` executable run as an operator runs it, against a fresh
//! database of the shared harness ([`tools::support::fresh_database`]).

use std::{
    io::Write,
    path::PathBuf,
    process::{Command, Output, Stdio},
};

use sqlx::{Connection, PgConnection};

/// The encryption key the commands run with.
pub const KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

/// A fresh database, dropped by [`Db::drop`].
pub struct Db {
    url: String,
}

impl Db {
    /// Creates the database.
    pub async fn fresh() -> Db {
        let url = tools::support::fresh_database()
            .await
            .expect("PostgreSQL is running");
        Db { url }
    }

    /// Its URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A connection to it.
    pub async fn connect(&self) -> PgConnection {
        PgConnection::connect(&self.url).await.expect("connects")
    }

    /// Drops the database.
    pub async fn drop(self) {
        tools::support::drop_database(&self.url).await;
    }

    /// Runs `worker ARGS` with `stdin`.
    pub fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        self.run_env(args, stdin, &[])
    }

    /// Runs `worker ARGS` with `stdin` and extra environment variables.
    pub fn run_env(&self, args: &[&str], stdin: Option<&str>, env: &[(&str, &str)]) -> Output {
        let mut child = Command::new(worker_executable())
            .args(args)
            .envs(env.iter().copied())
            .env("CONNECTOR_DATABASE_URL", &self.url)
            .env("CONNECTOR_ENCRYPTION_KEY", KEY)
            .env("CONNECTOR_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("runs");
        if let Some(text) = stdin {
            child
                .stdin
                .take()
                .expect("piped")
                .write_all(text.as_bytes())
                .expect("writes");
        }
        child.wait_with_output().expect("finishes")
    }
}

/// The `worker` executable of this build (built first under cargo).
fn worker_executable() -> PathBuf {
    static PATH: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PATH.get_or_init(|| {
        tools::binaries::Binaries::ensure(&["worker"])
            .expect("the worker executable")
            .path("worker")
    })
    .clone()
}

/// Output as text.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A portal document with a contact trigger and mappings.
pub const DOC: &str = r#"{
  "portal_id": 62515,
  "hubspot": { "private_app_token": "pat-na1-secret" },
  "impact": { "account_sid": "IRabc", "auth_token": "impact-secret", "program_id": "1000" },
  "triggers": { "contacts": { "on_create": true, "on_change": ["lifecyclestage"] } },
  "mappings": { "contacts": [
    { "from": "lifecyclestage", "to": "EventTypeCode", "value_map": { "salesqualifiedlead": "SQL" } },
    { "from": "hs_object_id", "to": "CustomerId" },
    { "from": "hs_object_id", "to": "OrderId" },
    { "from": "lastmodifieddate", "to": "EventDate" }
  ] }
}"#;
