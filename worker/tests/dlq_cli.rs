//! `worker dlq ...` against a fresh database holding dead letters.

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

#[tokio::test]
async fn dlq_list_show_replay_dry_run_and_discard() {
    let db = Db::fresh().await;
    assert!(db.run(&["migrate"], None).status.success());
    let mut conn = sqlx::PgConnection::connect(&format!("{SERVER}/{}", db.0))
        .await
        .expect("connects");
    for (portal, class, error) in [
        (
            62515_i64,
            "permanent",
            "impact.com refused the conversion (400): Campaign 9 was not found",
        ),
        (
            62516,
            "poison",
            "redelivered past the work queue's delivery limit",
        ),
    ] {
        sqlx::query(
            "INSERT INTO dead_letters (portal_id, object_type, object_id, reason_class, reason, last_status, last_error, attempts, events, payload)
             VALUES ($1, 'contacts', 7, $2, 'impact_rejected', 400, $3, 1, '[]', '[[\"CampaignId\",\"9\"]]')",
        )
        .bind(portal)
        .bind(class)
        .bind(error)
        .execute(&mut conn)
        .await
        .expect("inserts");
    }

    let out = db.run(&["dlq", "list"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    assert!(table.starts_with("ID "), "{table}");
    assert!(table.contains("2 dead letter(s)"), "{table}");

    let out = db.run(&["dlq", "list", "--json", "--reason-class", "poison"], None);
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(rows.as_array().map(Vec::len), Some(1));
    assert_eq!(rows[0]["portal_id"], 62516);
    let out = db.run(
        &[
            "dlq",
            "list",
            "--json",
            "--text",
            "campaign 9",
            "--since",
            "1h",
        ],
        None,
    );
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(rows.as_array().map(Vec::len), Some(1));
    let out = db.run(&["dlq", "list", "--reason-class", "nonsense"], None);
    assert!(!out.status.success());

    let out = db.run(&["dlq", "show", "1"], None);
    let one: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(one["last_status"], 400);

    let out = db.run(&["dlq", "replay", "1", "--as-sent", "--dry-run"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    assert!(
        shown.contains("dry_run") && shown.contains("CampaignId"),
        "{shown}"
    );

    let out = db.run(&["dlq", "discard", "2", "--reason", "load test"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        !db.run(&["dlq", "discard", "2", "--reason", "again"], None)
            .status
            .success()
    );
    let out = db.run(&["dlq", "list", "--json", "--state", "discarded"], None);
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(rows[0]["resolution"], "load test");
    drop(conn);
    db.drop().await;
}
