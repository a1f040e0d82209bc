//! Shared by the binary tests: a fresh database and the `worker` binary run against it.
#![allow(dead_code)] // Each test binary uses a different part.

use std::{
    io::Write,
    process::{Command, Output, Stdio},
};

use sqlx::Connection;

pub const KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
pub const SERVER: &str = "postgres://postgres@127.0.0.1:5432";

pub struct Db(pub String);

impl Db {
    pub async fn fresh() -> Db {
        let name = format!("worker_{}", uuid::Uuid::new_v4().simple());
        let mut admin = sqlx::PgConnection::connect(&format!("{SERVER}/test"))
            .await
            .expect("PostgreSQL is running");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .expect("creates");
        Db(name)
    }

    pub async fn drop(self) {
        if let Ok(mut admin) = sqlx::PgConnection::connect(&format!("{SERVER}/test")).await {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.0
            )))
            .execute(&mut admin)
            .await;
        }
    }

    pub fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        self.run_env(args, stdin, &[])
    }

    pub fn run_env(&self, args: &[&str], stdin: Option<&str>, env: &[(&str, &str)]) -> Output {
        let mut child = Command::new(env!("CARGO_BIN_EXE_worker"))
            .args(args)
            .envs(env.iter().copied())
            .env("CONNECTOR_DATABASE_URL", format!("{SERVER}/{}", self.0))
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

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

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
