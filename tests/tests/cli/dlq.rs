//! `worker dlq ...` against a fresh database holding dead letters.

use crate::support::cli::{Db, text};

#[tokio::test]
async fn dlq_list_show_replay_dry_run_and_discard() {
    let db = Db::fresh().await;
    assert!(db.run(&["migrate"], None).status.success());
    let mut conn = db.connect().await;
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
