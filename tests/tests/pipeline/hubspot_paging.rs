//! HubSpot's paging where it only shows at scale, shown with a few records
//! (the fake's page sizes are set small): v4 batch association rows that
//! page on their own.

use crate::support::e2e::{PORTAL, WorkerEnv, seed_deal_mappings};
use sandbox::{ObjectType, props};
use serde_json::json;
use worker::{EventResult, MessageOutcome};

/// Two deals won in one message are read ahead in batches; the one with
/// more line items than one row of the batch association read holds gets
/// every item in its conversion.
#[tokio::test]
async fn a_deal_with_more_line_items_than_a_row_page_converts_with_all_of_them()
-> anyhow::Result<()> {
    let env = WorkerEnv::start().await?;
    let mut deals = seed_deal_mappings();
    for (from, to) in [
        ("line_item{i}.hs_sku", "ItemSku{i}"),
        ("line_item{i}.name", "ItemCategory{i}"),
        ("line_item{i}.price", "ItemPrice{i}"),
        ("line_item{i}.quantity", "ItemQuantity{i}"),
    ] {
        deals.push(json!({ "from": from, "to": to }));
    }
    env.apply(json!({
        "triggers": { "deals": { "on_change": ["dealstage"] } },
        "mappings": { "deals": deals }
    }))
    .await?;
    let hs = env.sandbox.hubspot();
    hs.set_association_row_page(3);
    let contact = hs.create_contact(PORTAL, [("email", "ada@example.com")])?;
    let item = |i: usize| {
        props([
            ("hs_sku", format!("SKU-{i}")),
            ("name", "Tools".into()),
            ("price", "2.00".into()),
            ("quantity", "1".into()),
            ("currency", "USD".into()),
        ])
    };
    let big = hs.create_deal(
        PORTAL,
        [("dealname", "big")],
        (1..=7).map(item).collect(),
        Some(contact),
    )?;
    let small = hs.create_deal(
        PORTAL,
        [("dealname", "small")],
        vec![item(1)],
        Some(contact),
    )?;
    for deal in [big, small] {
        hs.set_property(PORTAL, ObjectType::Deals, deal, "dealstage", "closedwon")?;
    }
    let outcome = env.process(&env.new_events()).await;
    let MessageOutcome::Done(results) = &outcome else {
        panic!("{outcome:?}")
    };
    let delivered = results
        .iter()
        .filter(|r| matches!(r, EventResult::Delivered { .. }))
        .count();
    assert_eq!(delivered, 2, "{results:?}");
    let subs = env.submissions();
    let big_sub = subs
        .iter()
        .find(|s| s.param("OrderId") == Some(format!("{big}_closedwon").as_str()))
        .expect("the big deal converted");
    let skus: Vec<&str> = (1..=7)
        .filter_map(|i| big_sub.param(&format!("ItemSku{i}")))
        .collect();
    assert_eq!(skus.len(), 7, "{:?}", big_sub.params);
    assert_eq!(big_sub.param("ItemSku8"), None);
    env.finish().await;
    Ok(())
}
