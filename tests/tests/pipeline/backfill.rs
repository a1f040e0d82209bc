//! `worker backfill`: after an outage, HubSpot is re-scanned by last-modified
//! date and what the triggers would have fired is converted, once.

use crate::support::e2e::{PORTAL, WorkerEnv, seed_contact_mappings};
use sandbox::ObjectType;
use serde_json::json;
use shared::hubspot::SEARCH_RESULT_CAP;
use worker::backfill::{BackfillArgs, backfill};

#[tokio::test]
async fn backfill_converts_missed_records_and_skips_delivered_ones() -> anyhow::Result<()> {
    let env = WorkerEnv::start().await?;
    env.apply(json!({
        "triggers": { "contacts": { "on_create": true } },
        "mappings": { "contacts": seed_contact_mappings() }
    }))
    .await?;
    let hs = env.sandbox.hubspot();
    // One contact's webhook arrived and was delivered; three were missed.
    hs.create_contact(
        PORTAL,
        [
            ("lifecyclestage", "lead"),
            ("hs_lead_status", "NEW"),
            ("custom_impact_click_id", "live"),
        ],
    )?;
    env.process(&env.new_events()).await;
    assert_eq!(env.submissions().len(), 1);
    for i in 0..3 {
        let click = format!("missed-{i}");
        hs.create_contact(
            PORTAL,
            [
                ("lifecyclestage", "lead"),
                ("hs_lead_status", "NEW"),
                ("custom_impact_click_id", click.as_str()),
            ],
        )?;
    }
    let _missed = env.new_events();

    let args = BackfillArgs {
        portal: PORTAL,
        since: "1h".into(),
        until: None,
        object_type: Some("contacts".into()),
        search_result_cap: SEARCH_RESULT_CAP,
    };
    let report = backfill(&env.worker, &args).await?;
    assert_eq!(report.delivered, 3, "{report:?}");
    assert_eq!(report.already_delivered, 1, "{report:?}");
    assert_eq!(env.submissions().len(), 4);

    // Running it again sends nothing.
    let again = backfill(&env.worker, &args).await?;
    assert_eq!(again.delivered, 0, "{again:?}");
    assert_eq!(env.submissions().len(), 4);
    env.finish().await;
    Ok(())
}

/// HubSpot's search reaches 10,000 results per query (the fake's cap is
/// set to 30 here, the backfill's too): a window holding more is split by
/// time, and one millisecond holding more (a bulk import) is walked by id.
#[tokio::test]
async fn a_backfill_over_more_records_than_a_search_reaches_converts_them_all() -> anyhow::Result<()>
{
    let env = WorkerEnv::start().await?;
    env.apply(json!({
        "triggers": { "contacts": { "on_create": true } },
        "mappings": { "contacts": seed_contact_mappings() }
    }))
    .await?;
    let hs = env.sandbox.hubspot();
    hs.set_rate_limit(None);
    hs.set_search_result_cap(30);
    let mut ids = Vec::new();
    for i in 0..100 {
        let click = format!("bulk-{i}");
        ids.push(hs.create_contact(
            PORTAL,
            [
                ("lifecyclestage", "lead"),
                ("hs_lead_status", "NEW"),
                ("custom_impact_click_id", click.as_str()),
            ],
        )?);
    }
    let _missed = env.new_events();
    // 60 records a millisecond apart, 40 within one millisecond.
    let start = chrono::Utc::now() - chrono::Duration::minutes(10);
    for (i, id) in ids[..60].iter().enumerate() {
        let at = start + chrono::Duration::milliseconds(i as i64);
        hs.stamp_modified(PORTAL, ObjectType::Contacts, &[*id], at)?;
    }
    let bulk = start + chrono::Duration::minutes(1);
    hs.stamp_modified(PORTAL, ObjectType::Contacts, &ids[60..], bulk)?;

    let args = BackfillArgs {
        portal: PORTAL,
        since: "1h".into(),
        until: None,
        object_type: Some("contacts".into()),
        search_result_cap: 30,
    };
    let report = backfill(&env.worker, &args).await?;
    assert_eq!(report.objects, 100, "{report:?}");
    assert_eq!(report.delivered, 100, "{report:?}");
    let mut clicks = env.submitted("ClickId");
    clicks.dedup();
    assert_eq!(clicks.len(), 100);
    env.finish().await;
    Ok(())
}
