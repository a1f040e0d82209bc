//! No conversion is sent twice (invariant 3, docs/src/architecture.md), and the event's moment
//! is what is judged (invariant 4): duplicates, repeats, out-of-order
//! events, a crash between impact.com's answer and the commit, OR triggers.

use std::time::Duration;

use crate::support::e2e::{PORTAL, WorkerEnv, seed_deal_mappings};
use sandbox::{ObjectType, impact::Fault};
use serde_json::json;
use worker::{EventResult, MessageOutcome};

fn done(outcome: MessageOutcome) -> Vec<EventResult> {
    match outcome {
        MessageOutcome::Done(r) => r,
        other => panic!("expected Done, got {other:?}"),
    }
}

pub(crate) async fn deal_env(triggers: serde_json::Value) -> anyhow::Result<(WorkerEnv, u64)> {
    let env = WorkerEnv::start().await?;
    env.apply(json!({
        "triggers": { "deals": triggers },
        "mappings": { "deals": seed_deal_mappings() }
    }))
    .await?;
    let hs = env.sandbox.hubspot();
    let contact = hs.create_contact(PORTAL, [("email", "ken@example.com")])?;
    let deal = hs.create_deal(
        PORTAL,
        [("amount", "100.00"), ("deal_currency_code", "USD")],
        vec![],
        Some(contact),
    )?;
    env.new_events();
    Ok((env, deal))
}

#[tokio::test]
async fn duplicate_deliveries_give_one_conversion() -> anyhow::Result<()> {
    let (env, deal) = deal_env(json!({ "on_change": ["dealstage"] })).await?;
    let hs = env.sandbox.hubspot();
    hs.set_property(PORTAL, ObjectType::Deals, deal, "dealstage", "closedwon")?;
    let events = env.new_events();
    assert_eq!(events.len(), 1);

    // The same event twice in one message, then the message again (a
    // repeated HubSpot notification or a broker redelivery).
    let twice = [events[0].clone(), events[0].clone()];
    let first = done(env.process(&twice).await);
    assert!(
        matches!(first[0], EventResult::Delivered { .. }),
        "{first:?}"
    );
    assert_eq!(first[1], EventResult::Duplicate);
    let mut retried = events[0].clone();
    retried.attempt_number = 3; // HubSpot's retry counter does not change the identity
    assert_eq!(
        done(env.process(&[retried]).await),
        [EventResult::Duplicate]
    );

    assert_eq!(env.submissions().len(), 1);
    let conversions = env.conversions().await?;
    assert_eq!(conversions.len(), 1);
    assert_eq!(conversions[0].2, "delivered");
    env.finish().await;
    Ok(())
}

#[tokio::test]
async fn repeated_and_out_of_order_events_give_no_duplicate_conversion() -> anyhow::Result<()> {
    let (env, deal) = deal_env(json!({ "on_change": ["dealstage"] })).await?;
    let hs = env.sandbox.hubspot();
    for stage in ["contractsent", "closedwon", "contractsent", "closedwon"] {
        hs.set_property(PORTAL, ObjectType::Deals, deal, "dealstage", stage)?;
    }
    let mut events = env.new_events();
    events.reverse();
    // Newest first, each in its own message, and every one twice.
    for e in events.iter().chain(events.iter()) {
        done(env.process(std::slice::from_ref(e)).await);
    }
    assert_eq!(
        env.submitted("OrderId"),
        [format!("{deal}_closedwon"), format!("{deal}_contractsent")]
    );
    assert_eq!(env.conversions().await?.len(), 2);
    env.finish().await;
    Ok(())
}

#[tokio::test]
async fn closed_won_is_judged_at_the_events_moment() -> anyhow::Result<()> {
    let (env, deal) = deal_env(json!({
        "on_change": [{ "property": "dealstage", "values": ["closedwon"] }]
    }))
    .await?;
    let hs = env.sandbox.hubspot();
    hs.set_property(PORTAL, ObjectType::Deals, deal, "dealstage", "closedwon")?;
    // The deal moves on before the worker runs.
    hs.set_property(PORTAL, ObjectType::Deals, deal, "dealstage", "closedlost")?;
    let results = done(env.process(&env.new_events()).await);
    assert!(
        matches!(results[0], EventResult::Delivered { .. }),
        "{results:?}"
    );
    assert_eq!(results[1], EventResult::Ignored("value_not_matched"));
    let subs = env.submissions();
    assert_eq!(subs.len(), 1);
    assert_eq!(subs[0].param("EventTypeCode"), Some("Closed Won"));
    assert_eq!(
        subs[0].param("OrderId"),
        Some(format!("{deal}_closedwon").as_str())
    );
    assert_eq!(
        subs[0].param("Text2"),
        Some("0.0"),
        "other properties are read now"
    );
    env.finish().await;
    Ok(())
}

#[tokio::test]
async fn several_trigger_properties_act_as_or() -> anyhow::Result<()> {
    let env = WorkerEnv::start().await?;
    let mut mappings = seed_deal_mappings();
    // One OrderId per change (the event's moment), so each change is its own conversion.
    mappings[2] = json!({ "from": "event_occurred_at", "to": "OrderId" });
    mappings[0] = json!({ "const": "DealUpdate", "to": "EventTypeCode" });
    env.apply(json!({
        "triggers": { "deals": { "on_change": ["dealtype", "dealname"] } },
        "mappings": { "deals": mappings }
    }))
    .await?;
    let hs = env.sandbox.hubspot();
    let contact = hs.create_contact(PORTAL, [("email", "radia@example.com")])?;
    let deal = hs.create_deal(
        PORTAL,
        [("deal_currency_code", "USD")],
        vec![],
        Some(contact),
    )?;
    env.new_events();
    hs.set_property(PORTAL, ObjectType::Deals, deal, "dealtype", "newbusiness")?;
    tokio::time::sleep(Duration::from_millis(5)).await;
    hs.set_property(PORTAL, ObjectType::Deals, deal, "dealname", "Bigger deal")?;
    tokio::time::sleep(Duration::from_millis(5)).await;
    hs.set_property(
        PORTAL,
        ObjectType::Deals,
        deal,
        "description",
        "not a trigger",
    )?;
    let mut results = vec![];
    for e in env.new_events() {
        results.extend(done(env.process(&[e]).await));
    }
    assert!(
        matches!(results[0], EventResult::Delivered { .. }),
        "{results:?}"
    );
    assert!(
        matches!(results[1], EventResult::Delivered { .. }),
        "{results:?}"
    );
    assert_eq!(results[2], EventResult::Ignored("property_not_watched"));
    env.finish().await;
    Ok(())
}

#[tokio::test]
async fn a_crash_between_impacts_answer_and_the_commit_resends_the_same_order_id_once()
-> anyhow::Result<()> {
    let (env, deal) = deal_env(json!({ "on_change": ["dealstage"] })).await?;
    let hs = env.sandbox.hubspot();
    hs.set_property(PORTAL, ObjectType::Deals, deal, "dealstage", "closedwon")?;
    let events = env.new_events();
    // impact.com processes the request, then the connection dies unanswered:
    // for the worker, the outcome is unknown.
    env.sandbox.impact().fail_next([Fault::DropAfterProcessing]);
    let outcome = env.process(&events).await;
    assert!(
        matches!(&outcome, MessageOutcome::Retry(f) if f.reason == "impact_unavailable"),
        "{outcome:?}"
    );
    let rows = env.conversions().await?;
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].2.as_str(), rows[0].3), ("pending", 1));

    // The message comes back: the recorded conversion is resumed with the
    // same OrderId, never re-mapped into a second row.
    let results = done(env.process(&events).await);
    assert!(
        matches!(results[0], EventResult::Delivered { .. }),
        "{results:?}"
    );
    let rows = env.conversions().await?;
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].2.as_str(), rows[0].3), ("delivered", 2));
    let requests = env.sandbox.impact().requests();
    let order = format!("{deal}_closedwon");
    let same: Vec<_> = requests
        .iter()
        .filter(|r| r.param("OrderId") == Some(order.as_str()))
        .collect();
    assert_eq!(same.len(), 2);
    assert!(same[1].is_duplicate(), "impact.com recognises the repeat");
    // And from now on it is a plain duplicate.
    assert_eq!(done(env.process(&events).await), [EventResult::Duplicate]);
    env.finish().await;
    Ok(())
}
