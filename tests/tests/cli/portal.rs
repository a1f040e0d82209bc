//! The `worker` binary's operator commands against a fresh database.

use crate::support::cli::{DOC, Db, text};

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
        !exported.contains("pat-na1-secret") && !exported.contains("impact-secret"),
        "secrets never leave: {exported}"
    );
    let doc: serde_json::Value = serde_json::from_str(&exported).expect("JSON");
    assert_eq!(doc["hubspot"]["webhook_secret_set"], false);
    assert_eq!(
        doc["mappings"]["contacts"][0]["value_map"]["salesqualifiedlead"],
        "SQL"
    );
    // The export applies back as is (stored secrets are kept).
    let out = db.run(&["portal", "apply", "-"], Some(&exported));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "portal 62515 updated");

    // The private app's webhook secret: set, shown as set, never exported;
    // kept by an apply without it; removed with null.
    let with_secret = DOC.replace(
        r#""private_app_token": "pat-na1-secret""#,
        r#""private_app_token": "pat-na1-secret", "webhook_secret": "webhook-secret-value""#,
    );
    let out = db.run(&["portal", "apply", "-"], Some(&with_secret));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let export = |db: &crate::support::cli::Db| {
        let out = db.run(&["portal", "export", "62515"], None);
        text(&out.stdout)
    };
    let exported_with = export(&db);
    assert!(
        !exported_with.contains("webhook-secret-value"),
        "{exported_with}"
    );
    assert!(
        exported_with.contains(r#""webhook_secret_set": true"#),
        "{exported_with}"
    );
    let out = db.run(&["portal", "apply", "-"], Some(&exported_with));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(export(&db).contains(r#""webhook_secret_set": true"#));
    let removed = DOC.replace(
        r#""private_app_token": "pat-na1-secret""#,
        r#""private_app_token": "pat-na1-secret", "webhook_secret": null"#,
    );
    let out = db.run(&["portal", "apply", "-"], Some(&removed));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(export(&db).contains(r#""webhook_secret_set": false"#));

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
