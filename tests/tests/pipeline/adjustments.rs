//! Reversals and modifications (impact.com Actions API) end to end with the
//! sandbox: a lost or deleted deal reverses its delivered conversion
//! (`DELETE /Actions`), an amount change modifies it (`PUT /Actions`);
//! adjustments are idempotent, retried and dead-lettered like conversions.

use std::time::Duration;

use crate::support::e2e::{PORTAL, WorkerEnv, eventually, seed_deal_mappings, spawn_worker};
use sandbox::{ObjectType, Submission, impact::Fault};
use serde_json::{Value, json};
use shared::db::dead_letters::DeadLetterId;
use sqlx::Row;
use worker::{
    EventResult, MessageOutcome,
    dlq::replay::{ReplayMode, ReplayOutcome, replay_one},
};

/// The tracker id of the "Closed Won" event type (the seed maps the stage
/// label to EventTypeCode).
const TRACKER: u64 = 5001;

fn done(outcome: MessageOutcome) -> Vec<EventResult> {
    match outcome {
        MessageOutcome::Done(r) => r,
        other => panic!("expected Done, got {other:?}"),
    }
}

fn adjusted(kind: &'static str, reason: &'static str, sent: usize) -> EventResult {
    EventResult::Adjusted { kind, reason, sent }
}

/// A portal converting won deals, with `rules` as `adjustments.deals`, and
/// one open deal of 100 USD.
async fn deal_env(rules: Value) -> anyhow::Result<(WorkerEnv, u64)> {
    let env = WorkerEnv::start().await?;
    env.apply(json!({
        "triggers": { "deals": { "on_change": [{ "property": "dealstage", "values": ["closedwon"] }] } },
        "mappings": { "deals": seed_deal_mappings() },
        "adjustments": { "deals": rules }
    }))
    .await?;
    env.sandbox
        .impact()
        .define_event_type("Closed Won", TRACKER);
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

fn stage(env: &WorkerEnv, deal: u64, value: &str) -> anyhow::Result<()> {
    env.sandbox
        .hubspot()
        .set_property(PORTAL, ObjectType::Deals, deal, "dealstage", value)
}

/// Moves the deal to closed won and delivers its conversion.
async fn win(env: &WorkerEnv, deal: u64) -> anyhow::Result<()> {
    stage(env, deal, "closedwon")?;
    let r = done(env.process(&env.new_events()).await);
    assert!(matches!(r[0], EventResult::Delivered { .. }), "{r:?}");
    Ok(())
}

fn reversals(env: &WorkerEnv) -> Vec<Submission> {
    env.sandbox.impact().reversals()
}

fn modifications(env: &WorkerEnv) -> Vec<Submission> {
    env.sandbox.impact().modifications()
}

/// Adjustment rows: (kind, status, attempts, form).
async fn adjustment_rows(env: &WorkerEnv) -> anyhow::Result<Vec<(String, String, i32, Value)>> {
    let rows = sqlx::query("SELECT kind, status, attempts, form FROM adjustments ORDER BY id")
        .fetch_all(&env.pool)
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect())
}

#[tokio::test]
async fn won_then_lost_gives_one_conversion_and_one_reversal() -> anyhow::Result<()> {
    let (env, deal) = deal_env(json!({
        "reverse_when": [{ "property": "dealstage", "values": ["closedlost"] }],
        "disposition_code": "REJECTED",
        "action_tracker_ids": { "Closed Won": TRACKER }
    }))
    .await?;
    win(&env, deal).await?;
    stage(&env, deal, "closedlost")?;
    let lost = env.new_events();
    assert_eq!(
        done(env.process(&lost).await),
        [adjusted("reversal", "reversed", 1)]
    );
    // The same webhook again, and a second move to closed lost: no new reversal.
    assert_eq!(done(env.process(&lost).await), [EventResult::Duplicate]);
    stage(&env, deal, "appointmentscheduled")?;
    stage(&env, deal, "closedlost")?;
    let again = done(env.process(&env.new_events()).await);
    assert_eq!(again[1], adjusted("reversal", "already_reversed", 0));

    assert_eq!(env.sandbox.impact().conversions().len(), 1);
    let rev = reversals(&env);
    assert_eq!(rev.len(), 1);
    assert_eq!(
        rev[0].params,
        [
            ("ActionTrackerId".to_owned(), TRACKER.to_string()),
            ("OrderId".to_owned(), format!("{deal}_closedwon")),
            ("DispositionCode".to_owned(), "REJECTED".to_owned()),
        ]
    );
    let rows = adjustment_rows(&env).await?;
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].0.as_str(), rows[0].1.as_str(), rows[0].2),
        ("reversal", "delivered", 1)
    );
    let uri: Option<String> = sqlx::query_scalar("SELECT queued_uri FROM adjustments")
        .fetch_one(&env.pool)
        .await?;
    assert!(uri.is_some_and(|u| u.contains("/APISubmissions/")));
    let events = env.events().await?;
    assert!(
        events
            .iter()
            .any(|e| e.1 == "adjusted" && e.2.as_deref() == Some("reversed")),
        "{events:?}"
    );
    env.finish().await;
    Ok(())
}

#[tokio::test]
async fn an_amount_change_gives_one_modification() -> anyhow::Result<()> {
    let (env, deal) = deal_env(json!({
        "modify_on_change": ["amount"],
        "action_tracker_ids": { "Closed Won": TRACKER }
    }))
    .await?;
    let hs = env.sandbox.hubspot();
    win(&env, deal).await?;
    hs.set_property(PORTAL, ObjectType::Deals, deal, "amount", "1500")?;
    let changed = env.new_events();
    assert_eq!(
        done(env.process(&changed).await),
        [adjusted("modification", "modified", 1)]
    );
    assert_eq!(done(env.process(&changed).await), [EventResult::Duplicate]);
    // The same amount written differently: nothing new to tell impact.com.
    hs.set_property(PORTAL, ObjectType::Deals, deal, "amount", "1500.00")?;
    assert_eq!(
        done(env.process(&env.new_events()).await),
        [adjusted("modification", "same_amount", 0)]
    );

    let m = modifications(&env);
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].param("ActionTrackerId"), Some("5001"));
    assert_eq!(
        m[0].param("OrderId"),
        Some(format!("{deal}_closedwon").as_str())
    );
    assert_eq!(m[0].param("Reason"), Some("ORDER_UPDATE"));
    let amount: f64 = m[0].param("Amount").unwrap_or_default().parse()?;
    assert!((amount - 1500.0).abs() < 0.001, "{:?}", m[0].params);
    assert!(reversals(&env).is_empty());
    assert_eq!(env.sandbox.impact().conversions().len(), 1);
    env.finish().await;
    Ok(())
}

#[tokio::test]
async fn a_deleted_deal_is_reversed_and_nothing_delivered_means_nothing_to_adjust()
-> anyhow::Result<()> {
    let (env, deal) = deal_env(json!({
        "reverse_when": [{ "property": "dealstage", "values": ["closedlost"] }],
        "reverse_on_delete": true,
        "action_tracker_ids": { "Closed Won": TRACKER }
    }))
    .await?;
    let hs = env.sandbox.hubspot();
    // A deal lost without ever being won: no conversion, nothing to reverse.
    let other = hs.create_deal(PORTAL, [("amount", "5")], vec![], None)?;
    env.new_events();
    stage(&env, other, "closedlost")?;
    assert_eq!(
        done(env.process(&env.new_events()).await),
        [adjusted("reversal", "nothing_to_adjust", 0)]
    );

    win(&env, deal).await?;
    hs.delete_object(PORTAL, ObjectType::Deals, deal)?;
    let deleted = env.new_events();
    assert!(
        deleted[0].subscription_type.ends_with("deletion"),
        "{deleted:?}"
    );
    assert_eq!(
        done(env.process(&deleted).await),
        [adjusted("reversal", "reversed", 1)]
    );
    let rev = reversals(&env);
    assert_eq!(rev.len(), 1);
    // The documented default disposition.
    assert_eq!(rev[0].param("DispositionCode"), Some("OTHER"));
    assert_eq!(
        rev[0].param("OrderId"),
        Some(format!("{deal}_closedwon").as_str())
    );
    env.finish().await;
    Ok(())
}

#[tokio::test]
async fn a_5xx_on_the_adjustment_is_retried_through_the_ladder_then_delivered() -> anyhow::Result<()>
{
    let (env, deal) = deal_env(json!({
        "reverse_when": [{ "property": "dealstage", "values": ["closedlost"] }],
        "action_tracker_ids": { "Closed Won": TRACKER }
    }))
    .await?;
    win(&env, deal).await?;
    let running = spawn_worker(&env, env.settings.clone());
    env.sandbox
        .impact()
        .fail_next([Fault::ServerError(503), Fault::ServerError(502)]);
    stage(&env, deal, "closedlost")?;
    env.publish(&env.new_events()).await?;
    eventually(Duration::from_secs(30), "the reversal", || async {
        Ok(reversals(&env).len() == 1)
    })
    .await?;
    eventually(Duration::from_secs(10), "the adjustment row", || async {
        let rows = adjustment_rows(&env).await?;
        Ok(rows.len() == 1 && rows[0].1 == "delivered")
    })
    .await?;
    let rows = adjustment_rows(&env).await?;
    assert_eq!(rows[0].2, 3, "two failed attempts, then the delivery");
    let statuses: Vec<u16> = env
        .sandbox
        .impact()
        .requests()
        .iter()
        .filter(|r| r.param("DispositionCode").is_some())
        .map(|r| r.http_status)
        .collect();
    assert_eq!(statuses, [503, 502, 200]);
    assert!(env.dead_letters().await?.is_empty());
    running.stop().await?;
    env.finish().await;
    Ok(())
}

#[tokio::test]
async fn a_refused_adjustment_is_dead_lettered_and_replayable() -> anyhow::Result<()> {
    let (env, deal) = deal_env(json!({
        "modify_on_change": ["amount"],
        "modify_reason": "PRICE_CHANGE",
        "action_tracker_ids": { "Closed Won": 7777 }
    }))
    .await?;
    win(&env, deal).await?;
    env.sandbox
        .hubspot()
        .set_property(PORTAL, ObjectType::Deals, deal, "amount", "80")?;
    // impact.com knows the event type as 5001: tracker 7777 names no action (400).
    let r = done(env.process(&env.new_events()).await);
    assert!(
        matches!(&r[0], EventResult::Failed(f) if f.reason == "impact_rejected"),
        "{r:?}"
    );
    let letters = env.dead_letters().await?;
    assert_eq!(letters.len(), 1);
    assert_eq!(
        (letters[0].2.as_str(), letters[0].3),
        ("impact_rejected", Some(400))
    );
    let rows = adjustment_rows(&env).await?;
    assert_eq!((rows[0].1.as_str(), rows[0].2), ("failed", 1));
    let letter_adjustment: Option<i64> =
        sqlx::query_scalar("SELECT adjustment_id FROM dead_letters WHERE id = $1")
            .bind(letters[0].0)
            .fetch_one(&env.pool)
            .await?;
    assert!(letter_adjustment.is_some());

    // The operator learns the event type's id (impact.com now knows 7777 too) and replays.
    env.sandbox.impact().define_event_type("Closed Won", 7777);
    let id = DeadLetterId(letters[0].0);
    let dry = replay_one(
        &env.worker,
        id,
        ReplayMode {
            dry_run: true,
            ..Default::default()
        },
        "ops",
    )
    .await?;
    assert_eq!(dry.outcome, ReplayOutcome::DryRun);
    assert_eq!(
        dry.preview.as_ref().map(|p| p["method"].clone()),
        Some(json!("PUT"))
    );
    let replayed = replay_one(&env.worker, id, ReplayMode::default(), "ops").await?;
    assert_eq!(replayed.outcome, ReplayOutcome::Delivered, "{replayed:?}");
    let again = replay_one(&env.worker, id, ReplayMode::default(), "ops").await?;
    assert_eq!(again.outcome, ReplayOutcome::NotOpen);

    let m = modifications(&env);
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].param("Reason"), Some("PRICE_CHANGE"));
    assert_eq!(m[0].param("ActionTrackerId"), Some("7777"));
    let rows = adjustment_rows(&env).await?;
    assert_eq!((rows[0].1.as_str(), rows[0].2), ("delivered", 2));
    assert!(env.dead_letters().await?.is_empty());
    env.finish().await;
    Ok(())
}

#[tokio::test]
async fn two_losses_processed_at_once_reverse_once() -> anyhow::Result<()> {
    let (env, deal) = deal_env(json!({
        "reverse_when": [{ "property": "dealstage", "values": ["closedlost", "cancelled"] }],
        "action_tracker_ids": { "Closed Won": TRACKER }
    }))
    .await?;
    win(&env, deal).await?;
    stage(&env, deal, "closedlost")?;
    stage(&env, deal, "cancelled")?;
    let events = env.new_events();
    // Two messages racing (two workers): one reversal, whatever the order.
    let (a, b) = tokio::join!(env.process(&events[..1]), env.process(&events[1..]));
    let mut reasons: Vec<&str> = done(a)
        .into_iter()
        .chain(done(b))
        .map(|r| match r {
            EventResult::Adjusted { reason, .. } => reason,
            other => panic!("{other:?}"),
        })
        .collect();
    reasons.sort_unstable();
    assert_eq!(reasons, ["already_reversed", "reversed"]);
    assert_eq!(reversals(&env).len(), 1);
    assert_eq!(adjustment_rows(&env).await?.len(), 1);
    env.finish().await;
    Ok(())
}
