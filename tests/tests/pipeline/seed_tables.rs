//! Each example mapping table of the seed guide, end to end against the
//! sandbox and a real database: exactly the expected impact.com parameters.

use crate::support::e2e::{
    PORTAL, WorkerEnv, iso_seconds, seed_contact_mappings, seed_deal_mappings,
    seed_line_item_mappings,
};
use sandbox::{ObjectType, props};
use serde_json::json;
use worker::{EventResult, MessageOutcome};

fn params(pairs: &[(&str, String)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

#[tokio::test]
async fn seed_contacts_table() -> anyhow::Result<()> {
    let env = WorkerEnv::start().await?;
    env.apply(json!({
        "triggers": { "contacts": { "on_create": true, "on_change": ["lifecyclestage"] } },
        "mappings": { "contacts": seed_contact_mappings() }
    }))
    .await?;
    let hs = env.sandbox.hubspot();
    let id = hs.create_contact(
        PORTAL,
        [
            ("email", "ada@example.com"),
            ("lifecyclestage", "lead"),
            ("hs_lead_status", "NEW"),
            ("company", "Acme Corp"),
            ("city", "Berlin"),
            ("country", "Germany"),
            ("zip", "10115"),
            ("custom_impact_click_id", "SKhRQaSXwxyOUQ"),
        ],
    )?;
    let outcome = env.process(&env.new_events()).await;
    assert!(
        matches!(&outcome, MessageOutcome::Done(r) if matches!(r[0], EventResult::Delivered { .. })),
        "{outcome:?}"
    );
    let object = hs.object(PORTAL, ObjectType::Contacts, id).expect("exists");
    let subs = env.submissions();
    assert_eq!(subs.len(), 1);
    assert_eq!(
        subs[0].params,
        params(&[
            ("CampaignId", "1000".into()),
            ("EventTypeCode", "lead".into()),
            ("CustomerId", id.to_string()),
            ("OrderId", format!("{id}_NEW")),
            (
                "EventDate",
                iso_seconds(&object.properties["lastmodifieddate"])
            ),
            ("Text3", "Acme Corp".into()),
            ("CustomerCity", "Berlin".into()),
            ("CustomerCountry", "Germany".into()),
            ("CustomerPostCode", "10115".into()),
            ("ClickId", "SKhRQaSXwxyOUQ".into()),
        ])
    );
    assert!(subs[0].accept_json, "Accept: application/json is sent");

    // A lifecycle change is judged with the event's value.
    hs.set_property(PORTAL, ObjectType::Contacts, id, "hs_lead_status", "OPEN")?;
    hs.set_property(
        PORTAL,
        ObjectType::Contacts,
        id,
        "lifecyclestage",
        "salesqualifiedlead",
    )?;
    let outcome = env.process(&env.new_events()).await;
    let MessageOutcome::Done(results) = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(results[0], EventResult::Ignored("property_not_watched"));
    let subs = env.submissions();
    assert_eq!(subs.len(), 2);
    assert_eq!(subs[1].param("EventTypeCode"), Some("salesqualifiedlead"));
    assert_eq!(
        subs[1].param("OrderId"),
        Some(format!("{id}_OPEN").as_str())
    );
    env.finish().await;
    Ok(())
}

#[tokio::test]
async fn seed_deals_and_line_items_tables() -> anyhow::Result<()> {
    let env = WorkerEnv::start().await?;
    let mut deals = seed_deal_mappings();
    // No ItemQuantity{i} row: the line items' own quantity is sent.
    deals.extend(seed_line_item_mappings());
    env.apply(json!({
        "triggers": { "deals": { "on_change": ["dealstage"] } },
        "mappings": { "deals": deals }
    }))
    .await?;
    let hs = env.sandbox.hubspot();
    let contact = hs.create_contact(PORTAL, [("email", "grace@example.com")])?;
    let deal = hs.create_deal(
        PORTAL,
        [
            ("dealname", "Anvils"),
            ("closedate", "2026-08-01T23:55:24.000Z"),
        ],
        vec![
            props([
                ("hs_sku", "SKU-1"),
                ("name", "Anvil"),
                ("price", "10.00"),
                ("quantity", "2"),
                ("hs_line_item_currency_code", "USD"),
            ]),
            props([
                ("hs_sku", "SKU-2"),
                ("name", "Rope"),
                ("price", "2.50"),
                ("quantity", "1"),
                ("hs_line_item_currency_code", "USD"),
            ]),
        ],
        Some(contact),
    )?;
    hs.set_property(PORTAL, ObjectType::Deals, deal, "dealstage", "closedwon")?;
    let outcome = env.process(&env.new_events()).await;
    let MessageOutcome::Done(results) = &outcome else {
        panic!("{outcome:?}")
    };
    // Contact and deal creation: no trigger; the stage change converts.
    assert_eq!(results.len(), 3, "{results:?}");
    assert!(
        matches!(results[2], EventResult::Delivered { .. }),
        "{results:?}"
    );
    let object = hs.object(PORTAL, ObjectType::Deals, deal).expect("exists");
    let subs = env.submissions();
    assert_eq!(subs.len(), 1);
    assert_eq!(
        subs[0].params,
        params(&[
            ("CampaignId", "1000".into()),
            ("EventTypeCode", "Closed Won".into()),
            ("CustomerId", contact.to_string()),
            ("OrderId", format!("{deal}_closedwon")),
            (
                "EventDate",
                iso_seconds(&object.properties["hs_lastmodifieddate"])
            ),
            ("Text3", "2026-08-01T23:55:24.000Z".into()),
            (
                "Text2",
                object.properties["hs_deal_stage_probability"].clone()
            ),
            // The deal amount is left out: the line items carry the amounts.
            ("CurrencyCode", "USD".into()),
            ("ItemSku1", "SKU-1".into()),
            ("ItemName1", "Anvil".into()),
            ("ItemPrice1", "10.00".into()),
            ("ItemCategory1", "Hardware".into()),
            ("ItemQuantity1", "2".into()),
            ("ItemSku2", "SKU-2".into()),
            ("ItemName2", "Rope".into()),
            ("ItemPrice2", "2.50".into()),
            ("ItemCategory2", "Hardware".into()),
            ("ItemQuantity2", "1".into()),
        ])
    );
    env.finish().await;
    Ok(())
}

#[tokio::test]
async fn seed_deals_table_alone_sends_the_amount() -> anyhow::Result<()> {
    let env = WorkerEnv::start().await?;
    env.apply(json!({
        "triggers": { "deals": { "on_create": true } },
        "mappings": { "deals": seed_deal_mappings() }
    }))
    .await?;
    let hs = env.sandbox.hubspot();
    let contact = hs.create_contact(PORTAL, [("email", "alan@example.com")])?;
    let deal = hs.create_deal(
        PORTAL,
        [
            ("amount", "1500.00"),
            ("dealstage", "contractsent"),
            ("deal_currency_code", "EUR"),
        ],
        vec![],
        Some(contact),
    )?;
    env.process(&env.new_events()).await;
    let subs = env.submissions();
    assert_eq!(subs.len(), 1);
    let s = &subs[0];
    assert_eq!(s.param("OrderSubTotalPostDiscount"), Some("1500.00"));
    assert_eq!(s.param("CurrencyCode"), Some("EUR"));
    assert_eq!(s.param("EventTypeCode"), Some("Contract Sent"));
    assert_eq!(
        s.param("OrderId"),
        Some(format!("{deal}_contractsent").as_str())
    );
    env.finish().await;
    Ok(())
}

#[tokio::test]
async fn companies_mapping() -> anyhow::Result<()> {
    let env = WorkerEnv::start().await?;
    env.apply(json!({
        "triggers": { "companies": { "on_create": true } },
        "mappings": { "companies": [
            { "const": "NewCompany", "to": "EventTypeCode" },
            { "from": "impact_partner_id", "to": "MediaPartnerId" },
            { "from": "hs_object_id", "to": "OrderId" },
            { "from": "createdate", "to": "EventDate" },
            { "from": "name", "to": "Text1" },
            { "from": "domain", "to": "Text2" },
            { "from": "numberofemployees", "to": "Numeric1" }
        ] }
    }))
    .await?;
    let hs = env.sandbox.hubspot();
    let id = hs.create_company(
        PORTAL,
        [
            ("name", "Globex"),
            ("domain", "globex.test"),
            ("impact_partner_id", "77001"),
            ("numberofemployees", "250"),
        ],
    )?;
    env.process(&env.new_events()).await;
    let object = hs
        .object(PORTAL, ObjectType::Companies, id)
        .expect("exists");
    let subs = env.submissions();
    assert_eq!(subs.len(), 1, "{:?}", env.events().await?);
    assert_eq!(
        subs[0].params,
        params(&[
            ("CampaignId", "1000".into()),
            ("EventTypeCode", "NewCompany".into()),
            ("MediaPartnerId", "77001".into()),
            ("OrderId", id.to_string()),
            ("EventDate", iso_seconds(&object.properties["createdate"])),
            ("Text1", "Globex".into()),
            ("Text2", "globex.test".into()),
            ("Numeric1", "250".into()),
        ])
    );
    env.finish().await;
    Ok(())
}
