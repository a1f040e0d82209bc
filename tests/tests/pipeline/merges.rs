//! HubSpot merges and restores end to end: the fake merges as HubSpot does
//! (a new record, old ids reading as it, one `*.merge` event); what any id
//! of the merged record converted is not converted again under the new id,
//! stays listed under the survivor, and is adjusted with it; a restored
//! record does not fire its creation trigger again.

use crate::support::e2e::{PORTAL, WorkerEnv, seed_contact_mappings, seed_deal_mappings};
use sandbox::{ObjectType, WebhookEvent};
use serde_json::json;
use shared::db::outcomes::{ListFilter, list};
use worker::{EventResult, MessageOutcome};

fn done(outcome: MessageOutcome) -> Vec<EventResult> {
    match outcome {
        MessageOutcome::Done(r) => r,
        other => panic!("expected Done, got {other:?}"),
    }
}

fn delivered(results: &[EventResult]) -> usize {
    results
        .iter()
        .filter(|r| matches!(r, EventResult::Delivered { .. }))
        .count()
}

/// What HubSpot may send for the record a merge made: a creation-like
/// event (`contact.creation` of the new id).
fn creation_of(like: &WebhookEvent, id: u64) -> WebhookEvent {
    WebhookEvent {
        event_id: like.event_id + 10_000,
        subscription_type: "contact.creation".into(),
        object_id: id,
        change_flag: Some("NEW".into()),
        primary_object_id: None,
        merged_object_ids: vec![],
        new_object_id: None,
        number_of_properties_moved: None,
        ..like.clone()
    }
}

#[tokio::test]
async fn a_merged_contact_converts_nothing_twice_and_keeps_its_conversions() -> anyhow::Result<()> {
    let env = WorkerEnv::start().await?;
    env.apply(json!({
        "triggers": { "contacts": { "on_create": true, "on_change": ["lifecyclestage"] } },
        "mappings": { "contacts": seed_contact_mappings() }
    }))
    .await?;
    let hs = env.sandbox.hubspot();
    let contact = |click: &str| {
        hs.create_contact(
            PORTAL,
            [
                ("lifecyclestage", "lead"),
                ("hs_lead_status", "NEW"),
                ("custom_impact_click_id", click),
            ],
        )
    };
    // A is created and becomes a customer; B, the same person, is created.
    // (One message each: a creation converts the stage it reads.)
    let a = contact("click-a")?;
    assert_eq!(delivered(&done(env.process(&env.new_events()).await)), 1);
    hs.set_property(
        PORTAL,
        ObjectType::Contacts,
        a,
        "lifecyclestage",
        "customer",
    )?;
    assert_eq!(delivered(&done(env.process(&env.new_events()).await)), 1);
    let b = contact("click-b")?;
    assert_eq!(delivered(&done(env.process(&env.new_events()).await)), 1);

    // B (primary) and A merge into a new record, C.
    let c = hs.merge_objects(PORTAL, ObjectType::Contacts, b, a)?;
    let merge = env.new_events();
    assert_eq!(merge.len(), 1);
    assert_eq!(merge[0].subscription_type, "contact.merge");
    assert_eq!(
        (
            merge[0].object_id,
            merge[0].primary_object_id,
            merge[0].new_object_id
        ),
        (c, Some(b), Some(c))
    );
    assert_eq!(merge[0].merged_object_ids, [a]);
    assert_eq!(
        done(env.process(&merge).await),
        [EventResult::Ignored("merge")]
    );
    // HubSpot reports the new record: a creation, and a lifecycle stage
    // A already converted.
    hs.set_property(
        PORTAL,
        ObjectType::Contacts,
        c,
        "lifecyclestage",
        "customer",
    )?;
    let mut after = vec![creation_of(&merge[0], c)];
    after.extend(env.new_events());
    let results = done(env.process(&after).await);
    assert!(
        results
            .iter()
            .all(|r| matches!(r, EventResult::AlreadyDelivered { .. })),
        "{results:?}"
    );
    // A late event of the merged-away id reads as C: nothing new either.
    let mut late = after[1].clone();
    late.object_id = a;
    late.event_id += 1;
    late.occurred_at += 1;
    let results = done(env.process(&[late]).await);
    assert!(
        matches!(results[0], EventResult::AlreadyDelivered { .. }),
        "{results:?}"
    );
    assert_eq!(env.submissions().len(), 3, "no second conversion");

    // A new stage of the merged record converts.
    hs.set_property(
        PORTAL,
        ObjectType::Contacts,
        c,
        "lifecyclestage",
        "evangelist",
    )?;
    assert_eq!(delivered(&done(env.process(&env.new_events()).await)), 1);
    assert_eq!(env.submissions().len(), 4);

    // The conversions list of C shows A's and B's, each merged into C.
    let listed = list(
        &env.pool,
        &ListFilter {
            portal: Some(PORTAL as i64),
            limit: 100,
            object_id: Some(c as i64),
            object_type: Some("contacts".into()),
            ..ListFilter::default()
        },
    )
    .await?;
    let mut seen: Vec<(i64, Option<i64>, String)> = listed
        .iter()
        .map(|r| (r.object_id, r.merged_into, r.event_type.clone()))
        .collect();
    seen.sort();
    let (a, b, c) = (a as i64, b as i64, c as i64);
    let mut want = vec![
        (a, Some(c), "lead".to_owned()),
        (a, Some(c), "customer".to_owned()),
        (b, Some(c), "lead".to_owned()),
        (c, None, "evangelist".to_owned()),
    ];
    want.sort();
    assert_eq!(seen, want);
    // `worker conversions list --object C` says where A's went.
    let mut out = Vec::new();
    let cmd = worker::cli::records::ConversionsCommand::List {
        portal: Some(PORTAL as i64),
        status: None,
        limit: 100,
        object: Some(c),
        object_type: Some("contacts".into()),
        json: false,
    };
    worker::cli::records::conversions(&env.settings, cmd, &mut out).await?;
    let table = String::from_utf8(out)?;
    assert_eq!(table.matches(&format!("c:{a}>{c} ")).count(), 2, "{table}");
    assert_eq!(table.matches(&format!("c:{b}>{c} ")).count(), 1, "{table}");
    assert_eq!(table.lines().count(), 5, "{table}");
    let activity = shared::db::website::recent_conversions(&env.pool, PORTAL as i64).await?;
    assert!(
        activity
            .iter()
            .filter(|r| r.object_id == a)
            .all(|r| r.merged_into == Some(c))
    );
    env.finish().await;
    Ok(())
}

#[tokio::test]
async fn a_lost_merged_deal_reverses_what_its_merged_id_converted() -> anyhow::Result<()> {
    let env = WorkerEnv::start().await?;
    env.apply(json!({
        "triggers": { "deals": { "on_change": [{ "property": "dealstage", "values": ["closedwon"] }] } },
        "mappings": { "deals": seed_deal_mappings() },
        "adjustments": { "deals": {
            "reverse_when": [{ "property": "dealstage", "values": ["closedlost"] }],
            "action_tracker_ids": { "Closed Won": 5001 }
        } }
    }))
    .await?;
    env.sandbox.impact().define_event_type("Closed Won", 5001);
    let hs = env.sandbox.hubspot();
    let contact = hs.create_contact(PORTAL, [("email", "ken@example.com")])?;
    let deal = |amount: &str| {
        hs.create_deal(
            PORTAL,
            [("amount", amount), ("deal_currency_code", "USD")],
            vec![],
            Some(contact),
        )
    };
    let won = deal("100.00")?;
    let other = deal("50.00")?;
    hs.set_property(PORTAL, ObjectType::Deals, won, "dealstage", "closedwon")?;
    assert_eq!(delivered(&done(env.process(&env.new_events()).await)), 1);

    // The won deal is merged into the other one (primary): a new deal.
    let merged = hs.merge_objects(PORTAL, ObjectType::Deals, other, won)?;
    env.process(&env.new_events()).await;
    // The merged deal is lost: the conversion made under the old id is
    // reversed; the merged deal itself never converted.
    hs.set_property(PORTAL, ObjectType::Deals, merged, "dealstage", "closedlost")?;
    let results = done(env.process(&env.new_events()).await);
    assert_eq!(
        results,
        [EventResult::Adjusted {
            kind: "reversal",
            reason: "reversed",
            sent: 1
        }]
    );
    let reversals = env.sandbox.impact().reversals();
    assert_eq!(reversals.len(), 1);
    assert_eq!(
        reversals[0].param("OrderId"),
        Some(format!("{won}_closedwon").as_str())
    );
    env.finish().await;
    Ok(())
}

#[tokio::test]
async fn a_restored_contact_does_not_convert_its_creation_again() -> anyhow::Result<()> {
    let env = WorkerEnv::start().await?;
    env.apply(json!({
        "triggers": { "contacts": { "on_create": true } },
        "mappings": { "contacts": seed_contact_mappings() }
    }))
    .await?;
    let hs = env.sandbox.hubspot();
    let id = hs.create_contact(
        PORTAL,
        [
            ("lifecyclestage", "lead"),
            ("hs_lead_status", "NEW"),
            ("custom_impact_click_id", "r"),
        ],
    )?;
    assert_eq!(delivered(&done(env.process(&env.new_events()).await)), 1);
    hs.delete_object(PORTAL, ObjectType::Contacts, id)?;
    hs.restore_object(PORTAL, ObjectType::Contacts, id)?;
    let events = env.new_events();
    assert_eq!(events[1].subscription_type, "contact.restore");
    assert_eq!(events[1].object_id, id);
    let results = done(env.process(&events).await);
    assert_eq!(results[1], EventResult::Ignored("restore"), "{results:?}");
    assert_eq!(env.submissions().len(), 1);
    // The record reads again; a merged-away id cannot be restored.
    assert!(
        !hs.object(PORTAL, ObjectType::Contacts, id)
            .expect("kept")
            .archived
    );
    let other = hs.create_contact(PORTAL, [("email", "x@example.com")])?;
    hs.merge_objects(PORTAL, ObjectType::Contacts, id, other)?;
    assert!(
        hs.restore_object(PORTAL, ObjectType::Contacts, other)
            .is_err()
    );
    env.finish().await;
    Ok(())
}
