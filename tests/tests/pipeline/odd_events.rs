//! One odd event no longer refuses a whole delivery: through ingest and a
//! running worker, the valid events of a delivery convert, an association
//! change is ignored, and an event ingest cannot read becomes an `invalid`
//! dead letter that operators see and cannot replay by mistake.

use std::time::Duration;

use crate::support::{
    e2e::{PORTAL, WorkerEnv, eventually, seed_contact_mappings, spawn_worker},
    harness::{self, TEST_SECRET},
};
use serde_json::{Value, json};
use shared::db::dead_letters::{self, DeadLetterId, Filter, ReasonClass};
use worker::dlq::replay::{ReplayMode, ReplayOutcome, replay_one};

fn contacts_doc() -> Value {
    json!({
        "triggers": { "contacts": { "on_create": true } },
        "mappings": { "contacts": seed_contact_mappings() }
    })
}

#[tokio::test]
async fn a_mixed_delivery_converts_the_valid_event_and_keeps_the_unreadable_one()
-> anyhow::Result<()> {
    let env = WorkerEnv::start().await?;
    env.apply(contacts_doc()).await?;
    let mut ingest_settings = env.settings.clone();
    ingest_settings.hubspot_client_secret = Some(TEST_SECRET.to_owned().into());
    let ingest = harness::spawn_ingest(ingest_settings).await?;
    let running = spawn_worker(&env, env.settings.clone());

    let hs = env.sandbox.hubspot();
    let contact = hs.create_contact(
        PORTAL,
        [
            ("lifecyclestage", "lead"),
            ("hs_lead_status", "NEW"),
            ("custom_impact_click_id", "mixed-delivery"),
        ],
    )?;
    let company = hs.create_company(PORTAL, [("name", "Acme")])?;
    let creation = serde_json::to_value(
        env.new_events()
            .into_iter()
            .find(|e| e.subscription_type == "contact.creation")
            .expect("the contact's creation event"),
    )?;
    let association = json!({
        "eventId": 901, "subscriptionId": 902, "portalId": PORTAL, "appId": 903,
        "occurredAt": harness::now_ms(), "subscriptionType": "contact.associationChange",
        "attemptNumber": 0, "changeSource": "USER", "associationType": "CONTACT_TO_COMPANY",
        "fromObjectId": contact, "toObjectId": company,
        "associationRemoved": false, "isPrimaryAssociation": false
    });
    let unreadable = json!({
        "eventId": 904, "subscriptionId": 905, "portalId": PORTAL, "appId": 903,
        "occurredAt": harness::now_ms(), "subscriptionType": "contact.creation",
        "attemptNumber": 0, "objectId": "abc", "changeSource": "CRM"
    });
    let body = serde_json::to_vec(&json!([creation, association, unreadable]))?;
    let client = reqwest::Client::new();
    let resp = harness::signed_request(&client, &ingest.webhook_url(), TEST_SECRET, body)
        .send()
        .await?;
    assert_eq!(resp.status(), 200, "the delivery is accepted");
    let answer: Value = resp.json().await?;
    assert_eq!(
        (&answer["events"], &answer["ignored"], &answer["invalid"]),
        (&json!(1), &json!(1), &json!(1)),
        "{answer}"
    );

    // The valid event converts.
    let subs = env
        .sandbox
        .impact()
        .wait_for_submissions(1, Duration::from_secs(20))
        .await?;
    assert_eq!(subs[0].param("ClickId"), Some("mixed-delivery"));

    // The unreadable one is an open `invalid` dead letter, as sent.
    let filter = Filter {
        reason_class: Some(ReasonClass::Invalid),
        ..Filter::default()
    };
    eventually(Duration::from_secs(20), "an invalid dead letter", || {
        let (pool, filter) = (env.pool.clone(), filter.clone());
        async move { Ok(!dead_letters::list(&pool, &filter).await?.is_empty()) }
    })
    .await?;
    let found = dead_letters::list(&env.pool, &filter).await?;
    let [letter] = found.as_slice() else {
        panic!("one invalid dead letter, got {found:?}");
    };
    assert_eq!(letter.portal_id, Some(PORTAL as i64));
    assert_eq!(letter.reason, "invalid_event");
    assert_eq!(letter.events, json!([unreadable]), "the raw event");
    assert!(
        letter
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("`objectId` must be a non-negative integer")),
        "{letter:?}"
    );
    // Only one conversion, and the association change recorded nowhere.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(env.conversions().await?.len(), 1);
    let kinds: Vec<String> = env.events().await?.into_iter().map(|e| e.0).collect();
    assert_eq!(kinds, ["contact.creation"], "{kinds:?}");
    assert_eq!(
        dead_letters::list(&env.pool, &Filter::default())
            .await?
            .len(),
        1
    );

    // The website's activity lists it for the portal.
    let listed = shared::db::website::open_dead_letters(&env.pool, PORTAL as i64).await?;
    assert!(
        listed
            .iter()
            .any(|d| d.reason.as_deref() == Some("invalid: invalid_event")),
        "{listed:?}"
    );

    // A replay explains itself and leaves the dead letter open.
    for dry_run in [true, false] {
        let mode = ReplayMode {
            dry_run,
            ..ReplayMode::default()
        };
        let r = replay_one(&env.worker, DeadLetterId(letter.id.0), mode, "test").await?;
        assert_eq!(r.outcome, ReplayOutcome::NotReplayable, "{r:?}");
        assert!(
            r.detail.starts_with("cannot be replayed: invalid event"),
            "{}",
            r.detail
        );
    }
    let again = dead_letters::get(&env.pool, letter.id)
        .await?
        .expect("kept");
    assert!(again.is_open());
    assert_eq!(env.submissions().len(), 1, "nothing sent by the replay");

    running.stop().await?;
    ingest.stop().await?;
    env.finish().await;
    Ok(())
}
