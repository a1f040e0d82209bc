//! `worker backfill`: after an outage, HubSpot is re-scanned by last-modified
//! date and what the triggers would have fired is converted, once.

use crate::support::e2e::{PORTAL, WorkerEnv, seed_contact_mappings};
use serde_json::json;
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
