//! The worker records a message's event outcomes with one statement per
//! kind (`record_converted_many`, `record_many`): the same results as one
//! statement per event, including events and conversions seen before.

use domain::{
    events::HubSpotEvent, mapping::Conversion, object_type::ObjectType, status::EventStatus,
};
use serde_json::json;
use shared::db::{
    self,
    conversions::ConvertedItem,
    delivery_lease::{LeaseTimes, NewLease},
    events::{EventKey, EventOutcome},
};

fn event(object: u64, occurred: u64) -> HubSpotEvent {
    serde_json::from_value(json!({
        "eventId": object * 10, "portalId": 77, "occurredAt": occurred,
        "subscriptionType": "contact.creation", "objectId": object, "attemptNumber": 0
    }))
    .expect("a valid event")
}

fn conversion(order: &str) -> Conversion {
    Conversion {
        params: vec![
            ("EventTypeCode".into(), "Lead".into()),
            ("OrderId".into(), order.into()),
        ],
        event_type: "Lead".into(),
        order_id: order.into(),
        notes: vec![],
    }
}

#[tokio::test]
async fn batched_records_match_one_by_one_semantics() -> anyhow::Result<()> {
    let url = crate::support::e2e::fresh_database().await?;
    let pool = db::connect(&url, 2).await?;
    db::migrate(&pool).await?;
    sqlx::query("INSERT INTO portals (portal_id, hubspot_auth_kind) VALUES (77, 'private_app')")
        .execute(&pool)
        .await?;
    let (e1, e2, e3) = (event(1, 1000), event(2, 2000), event(3, 3000));
    let (k1, k2, k3) = (EventKey::of(&e1), EventKey::of(&e2), EventKey::of(&e3));
    let (c1, c2) = (conversion("1_lead"), conversion("2_lead"));
    let item = |conversion, key, event| ConvertedItem {
        object_type: ObjectType::Contacts,
        conversion,
        key,
        event,
        received_at: Some(chrono::Utc::now()),
        fetched: None,
        sources_id: None,
    };
    let lease = NewLease::new(LeaseTimes::default());

    let first = db::conversions::record_converted_many(
        &pool,
        &[item(&c1, &k1, &e1), item(&c2, &k2, &e2)],
        &lease,
    )
    .await?;
    assert_eq!(first.len(), 2);
    assert!(first.iter().all(|(row, first)| row.created && *first));
    assert_ne!(first[0].0.id, first[1].0.id);
    // The rows are created leased for their delivery, in the same statement.
    assert!(first.iter().all(|(row, _)| row.lease == Some(lease.token)));
    let leased: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM conversions WHERE lease_owner = $1 AND lease_until > now()",
    )
    .bind(lease.token)
    .fetch_one(&pool)
    .await?;
    assert_eq!(leased, 2);
    let payload: serde_json::Value =
        sqlx::query_scalar("SELECT payload FROM conversions WHERE id = $1")
            .bind(first[1].0.id)
            .fetch_one(&pool)
            .await?;
    assert_eq!(
        payload,
        serde_json::to_value(&c2.params)?,
        "results keep the items' order"
    );

    // Again: the rows exist and the events were recorded before. A third
    // event mapping to the first conversion's key is a new event for an
    // existing conversion.
    let again = db::conversions::record_converted_many(
        &pool,
        &[item(&c2, &k2, &e2), item(&c1, &k3, &e3)],
        &lease,
    )
    .await?;
    assert_eq!(again[0].0.id, first[1].0.id);
    assert!(!again[0].0.created && !again[0].1, "seen before");
    assert!(
        again.iter().all(|(row, _)| row.lease.is_none()),
        "an existing row's lease is not taken by recording"
    );
    assert_eq!(again[1].0.id, first[0].0.id);
    assert!(
        !again[1].0.created && again[1].1,
        "new event, known conversion"
    );

    // Outcomes without conversion: new ones are inserted, known ones not.
    let e4 = event(4, 4000);
    let k4 = EventKey::of(&e4);
    let ignored = || EventOutcome {
        status: EventStatus::Ignored,
        reason: Some("no_trigger"),
        error: None,
        conversion_id: None,
    };
    let recorded = db::events::record_many(
        &pool,
        &[(&k4, &e4, None, ignored()), (&k1, &e1, None, ignored())],
    )
    .await?;
    assert_eq!(recorded, [true, false]);
    let body: Option<serde_json::Value> = sqlx::query_scalar(
        "SELECT event FROM webhook_events WHERE object_id = 4 AND status = 'ignored'",
    )
    .fetch_one(&pool)
    .await?;
    assert_eq!(
        body, None,
        "an event that fired nothing is kept without its body"
    );
    let statuses: Vec<(i64, String)> =
        sqlx::query_as("SELECT object_id, status FROM webhook_events ORDER BY object_id")
            .fetch_all(&pool)
            .await?;
    assert_eq!(
        statuses,
        [
            (1, "converted".to_owned()),
            (2, "converted".to_owned()),
            (3, "converted".to_owned()),
            (4, "ignored".to_owned())
        ]
    );

    // A portal deleted since the worker read it: nothing is recorded (no
    // conversion outlives its account), and the error says why.
    let e5 = event(5, 5000);
    let k5 = EventKey::of(&e5);
    let c5 = conversion("5_lead");
    let mut gone = k5.clone();
    gone.portal_id = 78;
    let err = db::conversions::record_converted_many(
        &pool,
        &[item(&c5, &k5, &e5), item(&c5, &gone, &e5)],
        &lease,
    )
    .await
    .expect_err("the second portal does not exist");
    assert!(err.to_string().contains("portal was deleted"), "{err}");
    let err = db::conversions::record_converted(
        &pool,
        ObjectType::Contacts,
        &c5,
        &gone,
        &e5,
        None,
        (None, None),
        &lease,
    )
    .await
    .expect_err("no such portal");
    assert!(matches!(err, sqlx::Error::RowNotFound), "{err}");
    let orphans: i64 = sqlx::query_scalar("SELECT count(*) FROM conversions WHERE portal_id = 78")
        .fetch_one(&pool)
        .await?;
    assert_eq!(orphans, 0);
    pool.close().await;
    crate::support::e2e::drop_database(&url).await;
    Ok(())
}
