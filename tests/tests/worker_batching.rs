//! A webhook batch's objects are read with one batch call, not one call each.

use serde_json::json;
use tests::e2e::{PORTAL, WorkerEnv, seed_contact_mappings};
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
