//! A webhook batch's objects are read with one batch call, not one call each.

use crate::support::e2e::{PORTAL, WorkerEnv, seed_contact_mappings};
use serde_json::json;
use worker::{EventResult, MessageOutcome};

#[tokio::test]
async fn a_batch_of_events_costs_one_hubspot_read() -> anyhow::Result<()> {
    let env = WorkerEnv::start().await?;
    let mut mappings = seed_contact_mappings();
    mappings[2] = json!({ "from": "hs_object_id", "to": "OrderId" });
    env.apply(json!({
        "triggers": { "contacts": { "on_create": true } },
        "mappings": { "contacts": mappings }
    }))
    .await?;
    let hs = env.sandbox.hubspot();
    for i in 0..30 {
        hs.create_contact(
            PORTAL,
            [
                ("lifecyclestage", "lead".to_owned()),
                ("custom_impact_click_id", format!("click-{i}")),
            ],
        )?;
    }
    let events = env.new_events();
    let before = hs.api_calls(PORTAL);
    let outcome = env.process(&events).await;
    let MessageOutcome::Done(results) = outcome else {
        panic!("{outcome:?}")
    };
    assert!(
        results
            .iter()
            .all(|r| matches!(r, EventResult::Delivered { .. })),
        "{results:?}"
    );
    assert_eq!(
        hs.api_calls(PORTAL) - before,
        1,
        "one batch read for 30 contacts"
    );
    assert_eq!(env.submissions().len(), 30);
    env.finish().await;
    Ok(())
}

#[tokio::test]
async fn the_rate_budget_keeps_a_busy_portal_under_hubspots_limit() -> anyhow::Result<()> {
    let env = WorkerEnv::start().await?;
    let mut mappings = seed_contact_mappings();
    mappings[2] = json!({ "from": "hs_object_id", "to": "OrderId" });
    env.apply(json!({
        "triggers": { "contacts": { "on_create": true } },
        "mappings": { "contacts": mappings }
    }))
    .await?;
    let hs = env.sandbox.hubspot();
    for i in 0..130 {
        hs.create_contact(
            PORTAL,
            [
                ("lifecyclestage", "lead".to_owned()),
                ("custom_impact_click_id", format!("click-{i}")),
            ],
        )?;
    }
    // One message per event (no batch read): 130 reads against a limit of
    // 110 per 10 s.
    let started = std::time::Instant::now();
    for e in env.new_events() {
        let outcome = env.process(std::slice::from_ref(&e)).await;
        assert!(matches!(outcome, MessageOutcome::Done(_)), "{outcome:?}");
    }
    assert_eq!(hs.rate_limited(PORTAL), 0, "no 429 from HubSpot");
    assert_eq!(env.submissions().len(), 130);
    assert!(
        started.elapsed() > std::time::Duration::from_secs(1),
        "it had to slow down"
    );
    env.finish().await;
    Ok(())
}
