//! What impact.com requires of items and amounts, end to end: a deal's items
//! carry `ItemQuantity{i}` from the line items, items impact.com would refuse
//! are dead-lettered before they are sent, and a deal without a currency is
//! sent with the portal's company currency (read once per portal and cache
//! period), dead-lettered only when there is none.

use crate::support::e2e::{PORTAL, WorkerEnv, seed_deal_mappings, seed_line_item_mappings};
use sandbox::{ObjectType, Props, props};
use serde_json::{Value, json};
use worker::{EventResult, MessageOutcome};

fn results(outcome: MessageOutcome) -> Vec<EventResult> {
    match outcome {
        MessageOutcome::Done(r) => r,
        other => panic!("expected Done, got {other:?}"),
    }
}

fn anvil(quantity: &str) -> Props {
    props([
        ("hs_sku", "SKU-1"),
        ("name", "Anvil"),
        ("price", "10.00"),
        ("quantity", quantity),
    ])
}

async fn apply(env: &WorkerEnv, deals: Vec<Value>) -> anyhow::Result<()> {
    env.apply(json!({
        "triggers": { "deals": { "on_change": [{ "property": "dealstage", "values": ["closedwon"] }] } },
        "mappings": { "deals": deals }
    }))
    .await
}

/// Creates a won deal (no currency of its own) with `items`; returns its id.
fn won_deal(env: &WorkerEnv, amount: &str, items: Vec<Props>) -> anyhow::Result<u64> {
    let hs = env.sandbox.hubspot();
    let contact = hs.create_contact(PORTAL, [("email", "ada@example.com")])?;
    let deal = hs.create_deal(
        PORTAL,
        [("dealname", "Anvils"), ("amount", amount)],
        items,
        Some(contact),
    )?;
    hs.set_property(PORTAL, ObjectType::Deals, deal, "dealstage", "closedwon")?;
    Ok(deal)
}

#[tokio::test]
async fn items_impact_com_would_refuse_are_dead_lettered_with_the_reason() -> anyhow::Result<()> {
    let env = WorkerEnv::start().await?;
    // The seed's line-item rows without the category impact.com requires.
    let mut deals = seed_deal_mappings();
    deals.extend(
        seed_line_item_mappings()
            .into_iter()
            .filter(|r| r["to"] != "ItemCategory{i}"),
    );
    apply(&env, deals).await?;
    won_deal(&env, "20.00", vec![anvil("2")])?;
    let r = results(env.process(&env.new_events()).await);
    let Some(EventResult::Failed(f)) = r.last() else {
        panic!("{r:?}")
    };
    assert_eq!(f.reason.as_str(), "mapping_incomplete");
    assert!(f.detail.contains("ItemCategory1"), "{}", f.detail);
    assert!(
        f.detail.contains(r#""to": "ItemCategory{i}""#),
        "{}",
        f.detail
    );
    assert!(env.sandbox.impact().requests().is_empty(), "nothing sent");
    let letters = env.dead_letters().await?;
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].2, "mapping_incomplete");

    // A line item without a quantity: named too.
    let mut deals = seed_deal_mappings();
    deals.extend(seed_line_item_mappings());
    apply(&env, deals).await?;
    let mut no_quantity = anvil("1");
    no_quantity.remove("quantity");
    won_deal(&env, "10.00", vec![no_quantity])?;
    let r = results(env.process(&env.new_events()).await);
    let Some(EventResult::Failed(f)) = r.last() else {
        panic!("{r:?}")
    };
    assert!(f.detail.contains("has no quantity"), "{}", f.detail);
    assert!(env.sandbox.impact().requests().is_empty(), "nothing sent");
    env.finish().await;
    Ok(())
}

#[tokio::test]
async fn a_deal_without_currency_takes_the_company_currency_once_per_portal() -> anyhow::Result<()>
{
    let env = WorkerEnv::start().await?;
    let hs = env.sandbox.hubspot();
    hs.set_company_currency(PORTAL, Some("EUR"))?;
    let mut deals = seed_deal_mappings();
    deals.extend(seed_line_item_mappings());
    apply(&env, deals).await?;
    // Deals without deal_currency_code, their line items without one either.
    won_deal(&env, "1500.00", vec![])?;
    won_deal(&env, "20.00", vec![anvil("2")])?;
    won_deal(&env, "30.00", vec![anvil("3")])?;
    let r = results(env.process(&env.new_events()).await);
    let delivered = r
        .iter()
        .filter(|r| matches!(r, EventResult::Delivered { .. }))
        .count();
    assert_eq!(delivered, 3, "{r:?}");
    assert_eq!(env.submitted("CurrencyCode"), ["EUR", "EUR", "EUR"]);
    assert_eq!(env.submitted("ItemQuantity1"), ["2", "3"]);
    // One account-information read for the three deals.
    assert_eq!(hs.account_info_reads(PORTAL), 1);

    // A currency of the deal's own wins (no further read: cached).
    let deal = won_deal(&env, "5.00", vec![])?;
    hs.set_property(PORTAL, ObjectType::Deals, deal, "deal_currency_code", "GBP")?;
    env.process(&env.new_events()).await;
    assert!(env.submitted("CurrencyCode").contains(&"GBP".to_owned()));
    assert_eq!(hs.account_info_reads(PORTAL), 1);
    env.finish().await;
    Ok(())
}

#[tokio::test]
async fn a_deal_with_no_currency_anywhere_is_dead_lettered() -> anyhow::Result<()> {
    let env = WorkerEnv::start().await?;
    env.sandbox.hubspot().set_company_currency(PORTAL, None)?;
    apply(&env, seed_deal_mappings()).await?;
    won_deal(&env, "1500.00", vec![])?;
    let r = results(env.process(&env.new_events()).await);
    let Some(EventResult::Failed(f)) = r.last() else {
        panic!("{r:?}")
    };
    assert_eq!(f.reason.as_str(), "mapping_incomplete");
    assert!(f.detail.contains("CurrencyCode"), "{}", f.detail);
    assert!(f.detail.contains("company currency"), "{}", f.detail);
    assert!(env.submissions().is_empty());
    assert_eq!(env.dead_letters().await?.len(), 1);
    env.finish().await;
    Ok(())
}
