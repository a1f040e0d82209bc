//! The worker's record batcher, shared by all its messages: outcomes that
//! arrive together share one statement, and a batch PostgreSQL refuses is
//! written again one outcome at a time, so a row it cannot take fails only
//! its own event, not the others of the batch (which may be other
//! messages').

use crate::support::e2e::{PORTAL, WorkerEnv, seed_contact_mappings};
use domain::{
    events::HubSpotEvent, mapping::Conversion, object_type::ObjectType, status::EventStatus,
};
use serde_json::json;
use shared::db::events::EventKey;
use worker::{Batching, pipeline::record};

fn event(portal: u64, object: u64) -> HubSpotEvent {
    serde_json::from_value(json!({
        "eventId": object, "portalId": portal, "occurredAt": 1_700_000_000_000u64 + object,
        "subscriptionType": "contact.creation", "objectId": object, "attemptNumber": 0
    }))
    .expect("a valid event")
}

fn conversion(order: &str) -> Conversion {
    Conversion {
        params: vec![("OrderId".into(), order.into())],
        event_type: "Lead".into(),
        order_id: order.into(),
        notes: vec![],
    }
}

#[tokio::test]
async fn a_refused_batch_is_written_one_outcome_at_a_time() -> anyhow::Result<()> {
    let env = WorkerEnv::start().await?;
    env.apply(json!({
        "triggers": { "contacts": { "on_create": true } },
        "mappings": { "contacts": seed_contact_mappings() }
    }))
    .await?;
    let w = &env.worker;
    // The second event's portal was deleted since the worker read it: its
    // conversion cannot be recorded (no conversion outlives its account).
    let (live, gone, ignored) = (event(PORTAL, 1), event(4242, 2), event(PORTAL, 3));
    let (kl, kg, ki) = (
        EventKey::of(&live),
        EventKey::of(&gone),
        EventKey::of(&ignored),
    );
    let (cl, cg) = (conversion("1_lead"), conversion("2_lead"));
    // On this (single-threaded) test runtime the three are submitted before
    // the batch's task runs: one batch.
    let shared = Batching::Shared;
    let (rl, rg, ri) = tokio::join!(
        record::converted(w, shared, ObjectType::Contacts, &cl, (&kl, &live, None)),
        record::converted(w, shared, ObjectType::Contacts, &cg, (&kg, &gone, None)),
        record::outcome(
            w,
            shared,
            (&ki, &ignored, None),
            (EventStatus::Ignored, "no_trigger", None)
        ),
    );
    let (row, first) = rl.expect("the live portal's conversion is recorded");
    assert!(row.created && first);
    let err = rg.expect_err("the deleted portal's conversion is refused");
    assert!(err.to_string().contains("portal was deleted"), "{err}");
    assert!(ri.expect("the other outcome is recorded"));

    let rows: Vec<(i64, String)> =
        sqlx::query_as("SELECT object_id, status FROM webhook_events ORDER BY object_id")
            .fetch_all(&env.pool)
            .await?;
    assert_eq!(
        rows,
        [(1, "converted".to_owned()), (3, "ignored".to_owned())]
    );
    let orphans: i64 =
        sqlx::query_scalar("SELECT count(*) FROM conversions WHERE portal_id = 4242")
            .fetch_one(&env.pool)
            .await?;
    assert_eq!(orphans, 0);
    env.finish().await;
    Ok(())
}
