//! The `worker` binary's operator commands against a fresh database.

use std::{
    io::Write,
    process::{Command, Output, Stdio},
};

use sqlx::Connection;

const KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
const SERVER: &str = "postgres://postgres@127.0.0.1:5432";

struct Db(String);

impl Db {
    async fn fresh() -> Db {
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

    async fn drop(self) {
        if let Ok(mut admin) = sqlx::PgConnection::connect(&format!("{SERVER}/test")).await {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.0
            )))
            .execute(&mut admin)
            .await;
        }
    }

    fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut child = Command::new(env!("CARGO_BIN_EXE_worker"))
            .args(args)
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

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

const DOC: &str = r#"{
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

#[tokio::test]
async fn apply_export_list_and_refusals() {
    let db = Db::fresh().await;
    let out = db.run(&["migrate"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));

    let out = db.run(&["portal", "apply", "-"], Some(DOC));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "portal 62515 created");

    let out = db.run(&["portal", "export", "62515"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let exported = text(&out.stdout);
    assert!(
        !exported.contains("secret"),
        "secrets never leave: {exported}"
    );
    let doc: serde_json::Value = serde_json::from_str(&exported).expect("JSON");
    assert_eq!(
        doc["mappings"]["contacts"][0]["value_map"]["salesqualifiedlead"],
        "SQL"
    );
    // The export applies back as is (stored secrets are kept).
    let out = db.run(&["portal", "apply", "-"], Some(&exported));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "portal 62515 updated");

    let out = db.run(&["portal", "list"], None);
    let table = text(&out.stdout);
    assert!(table.starts_with("PORTAL"), "{table}");
    assert!(
        table.contains("62515") && table.contains("IRabc"),
        "{table}"
    );
    let out = db.run(&["portal", "list", "--json"], None);
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(list[0]["portal_id"], 62515);

    let bad = r#"{"portal_id": 5, "impact": {"account_sid": "IRabc", "program_id": "x"},
        "mappings": {"contacts": [{"from": "lifecyclestage", "to": "EventTypeCod"}]}}"#;
    let out = db.run(&["portal", "apply", "-"], Some(bad));
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("impact.program_id: \"x\" is not a Program ID"),
        "{err}"
    );
    assert!(
        err.contains("mappings.contacts[0].to: unknown impact.com field \"EventTypeCod\""),
        "{err}"
    );
    let out = db.run(&["portal", "apply", "-"], Some("{ not json"));
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("line 1"),
        "{}",
        text(&out.stderr)
    );
    let out = db.run(&["portal", "export", "999"], None);
    assert!(text(&out.stderr).contains("portal 999 does not exist"));
    db.drop().await;
}
