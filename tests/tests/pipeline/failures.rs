//! Every failure is classified and recorded, never silently dropped; skipped
//! events are counted with their reason; bad portal documents are refused.

use crate::support::e2e::{PORTAL, WorkerEnv, portal_doc, seed_contact_mappings};
use sandbox::{ObjectType, impact::Fault};
use serde_json::json;
use sqlx::Row;
use worker::{EventResult, MessageOutcome};

fn done(outcome: MessageOutcome) -> Vec<EventResult> {
    match outcome {
        MessageOutcome::Done(r) => r,
        other => panic!("expected Done, got {other:?}"),
    }
}

fn contacts_doc() -> serde_json::Value {
    json!({
        "triggers": { "contacts": { "on_create": true } },
        "mappings": { "contacts": seed_contact_mappings() }
    })
}

async fn new_contact(env: &WorkerEnv) -> anyhow::Result<u64> {
    env.sandbox.hubspot().create_contact(
        PORTAL,
        [
            ("lifecyclestage", "lead"),
            ("hs_lead_status", "NEW"),
            ("custom_impact_click_id", "click-1"),
        ],
    )
}

#[tokio::test]
async fn unknown_paused_and_unconfigured_portals_are_skipped_with_their_reason()
-> anyhow::Result<()> {
    let env = WorkerEnv::start().await?;
    new_contact(&env).await?;
    let events = env.new_events();
    assert_eq!(
        done(env.process(&events).await),
        [EventResult::Skipped("unknown_portal")]
    );

    let mut doc = contacts_doc();
    doc["status"] = json!("paused");
    env.apply(doc).await?;
    new_contact(&env).await?;
    assert_eq!(
        done(env.process(&env.new_events()).await),
        [EventResult::Skipped("portal_paused")]
    );
    // A skipped event is final: resuming the portal does not replay it.
    env.apply(contacts_doc()).await?;
    assert_eq!(done(env.process(&events).await), [EventResult::Duplicate]);

    let recorded = env.events().await?;
    assert_eq!(
        recorded
            .iter()
            .map(|(_, s, r)| (s.as_str(), r.as_deref()))
            .collect::<Vec<_>>(),
        [
            ("skipped", Some("unknown_portal")),
            ("skipped", Some("portal_paused"))
        ]
    );
    assert!(env.submissions().is_empty());
    env.finish().await;
    Ok(())
}

#[tokio::test]
async fn events_without_a_trigger_are_ignored_with_their_reason() -> anyhow::Result<()> {
    let env = WorkerEnv::start().await?;
    env.apply(json!({
        "triggers": { "contacts": { "on_create": false, "on_change": ["lifecyclestage"] } },
        "mappings": { "contacts": seed_contact_mappings() }
    }))
    .await?;
    let id = new_contact(&env).await?;
    env.sandbox
        .hubspot()
        .delete_object(PORTAL, ObjectType::Contacts, id)?;
    assert_eq!(
        done(env.process(&env.new_events()).await),
        [
            EventResult::Ignored("trigger_not_enabled"),
            EventResult::Ignored("unsupported_action")
        ]
    );
    env.finish().await;
    Ok(())
}

#[tokio::test]
async fn permanent_failures_are_recorded_with_reason_and_detail() -> anyhow::Result<()> {
    let env = WorkerEnv::start().await?;
    // No OrderId mapping: the conversion cannot be complete.
    let mut doc = contacts_doc();
    doc["mappings"]["contacts"] = json!([
        { "from": "lifecyclestage", "to": "EventTypeCode" },
        { "from": "hs_object_id", "to": "CustomerId" },
        { "from": "lastmodifieddate", "to": "EventDate" }
    ]);
    env.apply(doc).await?;
    new_contact(&env).await?;
    let results = done(env.process(&env.new_events()).await);
    let EventResult::Failed(f) = &results[0] else {
        panic!("{results:?}")
    };
    assert_eq!(f.reason, "mapping_incomplete");
    assert!(f.detail.contains("OrderId"), "{}", f.detail);

    // The object is deleted before the worker reads it.
    env.apply(contacts_doc()).await?;
    let id = new_contact(&env).await?;
    let created = env.new_events();
    env.sandbox
        .hubspot()
        .delete_object(PORTAL, ObjectType::Contacts, id)?;
    let results = done(env.process(&created).await);
    assert!(
        matches!(&results[0], EventResult::Failed(f) if f.reason == "object_deleted"),
        "{results:?}"
    );

    let rows = sqlx::query(
        "SELECT status, reason, error FROM webhook_events WHERE status = 'failed' ORDER BY id",
    )
    .fetch_all(&env.pool)
    .await?;
    assert_eq!(rows.len(), 2);
    assert_eq!(
        rows[0].get::<Option<String>, _>("reason").as_deref(),
        Some("mapping_incomplete")
    );
    assert!(
        rows[0]
            .get::<Option<String>, _>("error")
            .unwrap_or_default()
            .contains("OrderId")
    );
    assert_eq!(
        rows[1].get::<Option<String>, _>("reason").as_deref(),
        Some("object_deleted")
    );
    env.finish().await;
    Ok(())
}

#[tokio::test]
async fn impact_refusals_are_permanent_and_flag_bad_credentials() -> anyhow::Result<()> {
    let env = WorkerEnv::start().await?;
    let mut doc = portal_doc(
        contacts_doc()["triggers"].clone(),
        contacts_doc()["mappings"].clone(),
    );
    doc["impact"]["auth_token"] = json!("wrong-token");
    env.apply(doc).await?;
    new_contact(&env).await?;
    let results = done(env.process(&env.new_events()).await);
    assert!(
        matches!(&results[0], EventResult::Failed(f) if f.reason == "impact_auth"),
        "{results:?}"
    );
    let status: String = sqlx::query_scalar("SELECT credentials_status FROM portals")
        .fetch_one(&env.pool)
        .await?;
    assert_eq!(status, "failing");

    // A 400 (here: an unknown program) is permanent, with impact.com's body kept.
    let mut doc = portal_doc(
        contacts_doc()["triggers"].clone(),
        contacts_doc()["mappings"].clone(),
    );
    doc["impact"]["program_id"] = json!("999");
    env.apply(doc).await?;
    new_contact(&env).await?;
    let results = done(env.process(&env.new_events()).await);
    assert!(
        matches!(&results[0], EventResult::Failed(f) if f.reason == "impact_rejected"),
        "{results:?}"
    );
    let rows =
        sqlx::query("SELECT status, failure_reason, last_error FROM conversions ORDER BY id")
            .fetch_all(&env.pool)
            .await?;
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1].get::<String, _>("status"), "failed");
    assert!(
        rows[1]
            .get::<Option<String>, _>("last_error")
            .unwrap_or_default()
            .contains("CampaignId")
    );
    let status: String = sqlx::query_scalar("SELECT credentials_status FROM portals")
        .fetch_one(&env.pool)
        .await?;
    assert_eq!(status, "unknown", "a new auth token resets the flag");
    env.finish().await;
    Ok(())
}

#[tokio::test]
async fn transient_failures_leave_the_event_to_be_retried() -> anyhow::Result<()> {
    let env = WorkerEnv::start().await?;
    env.apply(contacts_doc()).await?;
    new_contact(&env).await?;
    let events = env.new_events();
    env.sandbox
        .impact()
        .fail_next([Fault::ServerError(503), Fault::RateLimited]);
    for _ in 0..2 {
        let outcome = env.process(&events).await;
        assert!(matches!(&outcome, MessageOutcome::Retry(_)), "{outcome:?}");
    }
    let results = done(env.process(&events).await);
    assert!(
        matches!(results[0], EventResult::Delivered { .. }),
        "{results:?}"
    );
    let rows = env.conversions().await?;
    assert_eq!(
        (rows.len(), rows[0].2.as_str(), rows[0].3),
        (1, "delivered", 3)
    );

    // HubSpot down: nothing is recorded, the message is retried.
    env.sandbox
        .hubspot()
        .outage(std::time::Duration::from_secs(30));
    new_contact(&env).await?;
    let events = env.new_events();
    let outcome = env.process(&events).await;
    assert!(
        matches!(&outcome, MessageOutcome::Retry(f) if f.reason == "hubspot_unavailable"),
        "{outcome:?}"
    );
    assert_eq!(env.events().await?.len(), 1);
    env.finish().await;
    Ok(())
}

#[tokio::test]
async fn bad_portal_documents_are_refused_with_clear_errors() -> anyhow::Result<()> {
    let env = WorkerEnv::start().await?;
    let refuse = |doc: serde_json::Value| {
        let env = &env;
        async move { env.apply(doc).await.expect_err("refused").to_string() }
    };
    let e = refuse(
        json!({ "portal_id": PORTAL, "impact": { "account_sid": "IRsandbox", "program_id": "1000" },
        "triggers": { "deal": { "on_create": true } } }),
    )
    .await;
    assert!(
        e.contains("unknown variant `deal`, expected one of `contacts`, `companies`, `deals`"),
        "{e}"
    );
    let e = refuse(json!({ "mappings": { "contacts": [
        { "from": "lifecyclestage", "to": "EventTypeCod" },
        { "from": "deal_[stage]_id", "to": "OrderId" }
    ] } }))
    .await;
    assert!(
        e.contains("mappings.contacts[0].to: unknown impact.com field \"EventTypeCod\""),
        "{e}"
    );
    assert!(
        e.contains("mappings.contacts[1].from: \"deal_[stage]_id\" is only available for deals"),
        "{e}"
    );
    // A new portal needs its secrets.
    let e = refuse(json!({ "portal_id": 7, "hubspot": {}, "impact": { "account_sid": "IRx", "program_id": "1" } })).await;
    assert!(e.contains("impact.auth_token: required"), "{e}");
    let e = refuse(json!({ "portal_id": 7, "hubspot": {}, "impact": { "account_sid": "IRx", "auth_token": "t", "program_id": "1" } })).await;
    assert!(e.contains("hubspot.private_app_token: required"), "{e}");
    assert!(
        sqlx::query("SELECT 1 FROM portals")
            .fetch_all(&env.pool)
            .await?
            .is_empty()
    );

    // An exported document applies back unchanged (secrets kept).
    env.apply(contacts_doc()).await?;
    let exported = worker::cli::export(&env.pool, domain::events::PortalId(PORTAL)).await?;
    let text = serde_json::to_string(&exported)?;
    assert!(
        !text.contains("sandbox-token") && !text.contains("pat-sandbox"),
        "{text}"
    );
    let cipher = shared::crypto::SecretCipher::from_base64(crate::support::e2e::KEY)?;
    let (_, created, _) = worker::cli::apply_text(&env.pool, &cipher, &text, "test").await?;
    assert!(!created);
    new_contact(&env).await?;
    let results = done(env.process(&env.new_events()).await);
    assert!(
        matches!(results[0], EventResult::Delivered { .. }),
        "{results:?}"
    );
    env.finish().await;
    Ok(())
}
