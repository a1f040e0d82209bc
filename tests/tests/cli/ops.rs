//! Operations commands through the binary: webhook subscriptions (the
//! table and the developer project's component; `--apply` is in
//! `subscriptions`), pruning and online key rotation.

use crate::support::cli::{DOC, Db, KEY, text};

const NEW_KEY: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

async fn sql(db: &Db, query: &str) -> Vec<sqlx::postgres::PgRow> {
    let mut conn = db.connect().await;
    sqlx::query(sqlx::AssertSqlSafe(query.to_owned()))
        .fetch_all(&mut conn)
        .await
        .expect("query runs")
}

#[tokio::test]
async fn subscriptions_follow_the_triggers_and_warn_when_never_seen() {
    let db = Db::fresh().await;
    let out = db.run(&["portal", "apply", "-"], Some(DOC));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = db.run_env(
        &["subscriptions", "--json"],
        None,
        &[("CONNECTOR_PUBLIC_URL", "https://c.example.com/")],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    // The developer project's webhooks component (webhooks-hsmeta.json):
    // classic types under legacyCrmObjects, privacy deletions under
    // hubEvents, crmObjects only for generic object.* types.
    let component: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(component["uid"], "webhooks");
    assert_eq!(component["type"], "webhooks");
    let cfg = &component["config"];
    assert_eq!(
        cfg["settings"],
        serde_json::json!({"targetUrl": "https://c.example.com/webhooks/hubspot", "maxConcurrentRequests": 10})
    );
    assert_eq!(cfg["subscriptions"]["crmObjects"], serde_json::json!([]));
    assert_eq!(
        cfg["subscriptions"]["legacyCrmObjects"],
        serde_json::json!([
            {"subscriptionType": "contact.creation", "active": true},
            {"subscriptionType": "contact.merge", "active": true},
            {"subscriptionType": "contact.propertyChange", "propertyName": "lifecyclestage", "active": true},
            {"subscriptionType": "contact.restore", "active": true}
        ])
    );
    assert_eq!(
        cfg["subscriptions"]["hubEvents"],
        serde_json::json!([{"subscriptionType": "contact.privacyDeletion", "active": true}])
    );
    let warnings = text(&out.stderr);
    assert!(
        warnings.contains("no contact.creation event received"),
        "{warnings}"
    );
    assert!(
        warnings.contains("contact.propertyChange of lifecyclestage"),
        "{warnings}"
    );

    // Once such events arrived, only the missing one is reported.
    sql(&db, "INSERT INTO webhook_events (portal_id, event_id, subscription_type, object_id, occurred_at, status, event)
              VALUES (62515, 1, 'contact.creation', 7, 1, 'converted', '{}')").await;
    let out = db.run(&["subscriptions"], None);
    let warnings = text(&out.stderr);
    assert!(!warnings.contains("no contact.creation"), "{warnings}");
    assert!(warnings.contains("lifecyclestage"), "{warnings}");
    assert!(
        text(&out.stdout).contains("contact.propertyChange"),
        "{}",
        text(&out.stdout)
    );
    // Merges, restores and privacy deletions may rightly never come: no warning.
    assert!(
        !warnings.contains("merge") && !warnings.contains("privacyDeletion"),
        "{warnings}"
    );
    db.drop().await;
}

#[tokio::test]
async fn prune_removes_only_what_is_past_retention() {
    let db = Db::fresh().await;
    let out = db.run(&["portal", "apply", "-"], Some(DOC));
    assert!(out.status.success(), "{}", text(&out.stderr));
    sql(&db, "INSERT INTO webhook_events (portal_id, event_id, subscription_type, object_id, occurred_at, status, processed_at, event) VALUES
              (62515, 1, 'contact.creation', 1, 1, 'converted', now() - interval '40 days', '{}'),
              (62515, 2, 'contact.creation', 2, 1, 'converted', now() - interval '1 day', '{}')").await;
    let out = db.run(&["prune"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("pruned 1 webhook events and 0 delivered conversions"),
        "{}",
        text(&out.stdout)
    );
    // A retention shorter than HubSpot's retry window is raised to 2 days.
    let out = db.run_env(
        &["prune"],
        None,
        &[("CONNECTOR_RETENTION_EVENTS_DAYS", "1")],
    );
    assert!(
        text(&out.stdout).contains("pruned 0 webhook events"),
        "{}",
        text(&out.stdout)
    );
    let left = sql(&db, "SELECT 1 FROM webhook_events").await;
    assert_eq!(left.len(), 1);
    db.drop().await;
}

#[tokio::test]
async fn pruning_conversions_unlinks_their_events_and_removes_rows_of_deleted_accounts() {
    let db = Db::fresh().await;
    let out = db.run(&["portal", "apply", "-"], Some(DOC));
    assert!(out.status.success(), "{}", text(&out.stderr));
    sql(&db, "INSERT INTO conversions (id, portal_id, event_type, order_id, object_type, object_id, payload, status, delivered_at) VALUES
              (1, 62515, 'LEAD', 'old', 'contacts', 1, '[]', 'delivered', now() - interval '100 days'),
              (2, 62515, 'LEAD', 'new', 'contacts', 2, '[]', 'delivered', now())").await;
    sql(&db, "INSERT INTO webhook_events (portal_id, event_id, subscription_type, object_id, occurred_at, status, conversion_id, event) VALUES
              (62515, 1, 'contact.creation', 1, 1, 'converted', 1, '{}'),
              (62515, 2, 'contact.creation', 2, 1, 'converted', 2, '{}')").await;
    // Rows of an account deleted meanwhile (a worker raced the deletion).
    sql(
        &db,
        "INSERT INTO audit_log (portal_id, actor, action) VALUES (777, 'admin', 'portal.delete')",
    )
    .await;
    sql(&db, "INSERT INTO conversions (id, portal_id, event_type, order_id, object_type, object_id, payload) VALUES
              (3, 777, 'LEAD', 'orphan', 'contacts', 3, '[]')").await;
    sql(&db, "INSERT INTO webhook_events (portal_id, event_id, subscription_type, object_id, occurred_at, status, event) VALUES
              (777, 3, 'contact.creation', 3, 1, 'ignored', '{}')").await;

    let out = db.run_env(
        &["prune"],
        None,
        &[("CONNECTOR_RETENTION_CONVERSIONS_DAYS", "90")],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains(
            "pruned 0 webhook events and 1 delivered conversions, and 2 rows of deleted accounts"
        ),
        "{}",
        text(&out.stdout)
    );
    let links = sql(
        &db,
        "SELECT object_id, conversion_id FROM webhook_events ORDER BY object_id",
    )
    .await;
    let links: Vec<(i64, Option<i64>)> = links
        .iter()
        .map(|r| {
            use sqlx::Row;
            (r.get(0), r.get(1))
        })
        .collect();
    assert_eq!(links, vec![(1, None), (2, Some(2))]);
    let left = sql(&db, "SELECT order_id FROM conversions ORDER BY id").await;
    assert_eq!(
        left.len(),
        1,
        "only the recent conversion of the live portal stays"
    );
    db.drop().await;
}

#[tokio::test]
async fn keys_rotate_online_and_old_keys_can_then_be_dropped() {
    let db = Db::fresh().await;
    let out = db.run(&["portal", "apply", "-"], Some(DOC));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = db.run(&["keys", "status"], None);
    assert_eq!(text(&out.stdout).trim(), "key 1 (current): 2 secrets");

    let old = format!("1:{KEY}");
    let rotated_env = [
        ("CONNECTOR_ENCRYPTION_KEY", NEW_KEY),
        ("CONNECTOR_ENCRYPTION_KEY_ID", "2"),
        ("CONNECTOR_ENCRYPTION_OLD_KEYS", old.as_str()),
    ];
    // Without the old key the stored secrets cannot be read: a clear error.
    let out = db.run_env(&["keys", "rotate"], None, &rotated_env[..2]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("CONNECTOR_ENCRYPTION_OLD_KEYS"),
        "{}",
        text(&out.stderr)
    );
    let out = db.run_env(&["keys", "rotate"], None, &rotated_env);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout).trim(),
        "re-encrypted 2 secrets under key 2"
    );
    // Everything is now under key 2: the old key is no longer needed.
    let out = db.run_env(&["keys", "rotate"], None, &rotated_env[..2]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout).trim(),
        "re-encrypted 0 secrets under key 2"
    );
    let out = db.run_env(&["keys", "status"], None, &rotated_env[..2]);
    assert_eq!(text(&out.stdout).trim(), "key 2 (current): 2 secrets");
    // Applying with the new key keeps working, and no secret is stored in clear.
    let out = db.run_env(&["portal", "apply", "-"], Some(DOC), &rotated_env[..2]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let rows = sql(&db, "SELECT 1 FROM portals WHERE position('impact-secret' in encode(impact_auth_token, 'escape')) > 0").await;
    assert!(rows.is_empty());
    db.drop().await;
}
