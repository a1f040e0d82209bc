//! `worker adjustments list`, and adjustment rules through `portal apply` /
//! `portal export`, against a fresh database.

use crate::support::cli::{DOC, Db, text};

#[tokio::test]
async fn rules_round_trip_and_adjustments_are_listed() {
    let db = Db::fresh().await;
    let mut doc: serde_json::Value = serde_json::from_str(DOC).expect("JSON");
    doc["adjustments"] = serde_json::json!({ "contacts": {
        "reverse_when": [{ "property": "lifecyclestage", "values": ["other"] }],
        "reverse_on_delete": true,
        "disposition_code": "REJECTED"
    }});
    let out = db.run(&["portal", "apply", "-"], Some(&doc.to_string()));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = db.run(&["portal", "export", "62515"], None);
    let exported: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(exported["adjustments"], doc["adjustments"]);

    let mut conn = db.connect().await;
    sqlx::query(
        "INSERT INTO conversions (id, portal_id, event_type, order_id, object_type, object_id, payload, status)
         VALUES (1, 62515, 'SQL', '7', 'contacts', 7, '[]', 'delivered')",
    )
    .execute(&mut conn)
    .await
    .expect("inserts");
    for (kind, status, error) in [
        ("reversal", "delivered", None),
        ("modification", "failed", Some("impact.com refused (400)")),
    ] {
        sqlx::query(
            "INSERT INTO adjustments (portal_id, conversion_id, kind, event_key, object_type, object_id, cause, form, status, attempts, last_error)
             VALUES (62515, 1, $1, 'event:1', 'contacts', 7, 'lifecyclestage=other', '[[\"OrderId\",\"7\"]]', $2, 1, $3)",
        )
        .bind(kind)
        .bind(status)
        .bind(error)
        .execute(&mut conn)
        .await
        .expect("inserts");
    }

    let out = db.run(&["adjustments", "list"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    assert!(table.starts_with("ID "), "{table}");
    assert!(table.contains("2 adjustment(s)"), "{table}");
    assert!(
        table.contains("last error: impact.com refused (400)"),
        "{table}"
    );
    let out = db.run(
        &[
            "adjustments",
            "list",
            "--json",
            "--status",
            "delivered",
            "--portal",
            "62515",
        ],
        None,
    );
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(rows.as_array().map(Vec::len), Some(1));
    assert_eq!(rows[0]["kind"], "reversal");
    assert_eq!(rows[0]["form"], serde_json::json!([["OrderId", "7"]]));
    let out = db.run(&["adjustments", "list", "--status", "lost"], None);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("lost"), "{}", text(&out.stderr));
    db.drop().await;
}
