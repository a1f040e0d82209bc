//! Line items and currency on the website: the mapping page and the JSON
//! API name the item fields impact.com requires (with a source to map), a
//! constant can be mapped from the page, and the preview names what is
//! missing, then shows the items with their quantity and the portal's
//! company currency (the worker's assembly).

use crate::support::{
    e2e::seed_deal_mappings,
    website::{Auth, OPERATOR_TOKEN, WebEnv},
};
use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::website::{Answer, Login};

const P1: u64 = 1001;

async fn put(w: &WebEnv, path: &str, body: Value) -> Answer {
    w.api(
        Method::PUT,
        &format!("/api/v1/portals/{P1}/{path}"),
        Auth::Operator(OPERATOR_TOKEN),
        Some(body),
    )
    .await
}

async fn preview(w: &WebEnv, s: &Login, deal: u64) -> Answer {
    let id = deal.to_string();
    w.submit(
        s,
        "/preview",
        &[("object_type", "deals"), ("object_id", id.as_str())],
    )
    .await
}

#[tokio::test]
async fn missing_item_fields_are_named_until_mapped() -> anyhow::Result<()> {
    let w = WebEnv::start().await?;
    let s = w.install(P1).await?;
    let base = format!("/api/v1/portals/{P1}");
    let ok = put(
        &w,
        "settings",
        json!({"account_sid":"IRsandbox","auth_token":"sandbox-token","program_id":"1000"}),
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    let t = put(&w, "triggers", json!({"deals":{"on_change":["dealstage"]}})).await;
    assert_eq!(t.status, StatusCode::OK, "{}", t.body);
    // The seed's line-item rows: SKU, name, price; no category.
    let mut deals = seed_deal_mappings();
    deals.extend([
        json!({ "from": "line_item{i}.hs_sku", "to": "ItemSku{i}" }),
        json!({ "from": "line_item{i}.name", "to": "ItemName{i}" }),
        json!({ "from": "line_item{i}.price", "to": "ItemPrice{i}" }),
    ]);
    let m = put(&w, "mappings", json!({ "deals": deals })).await;
    assert_eq!(m.status, StatusCode::OK, "{}", m.body);
    let warnings = m.json()["warnings"].to_string();
    assert!(
        warnings.contains("nothing maps ItemCategory{i}"),
        "{warnings}"
    );
    let view = w
        .api(Method::GET, &base, Auth::Operator(OPERATOR_TOKEN), None)
        .await;
    assert_eq!(
        view.json()["unmapped"]["deals"],
        json!(["ItemCategory{i} (e.g. a constant category, or a line-item property holding it)"])
    );
    let page = w.get("/mappings", Some(&s.cookie)).await;
    assert!(
        page.body.contains("id=\"unmapped-deals\">Required impact.com fields not mapped yet: ItemCategory{i} (e.g. a constant category"),
        "{}",
        page.body
    );

    // A deal with line items and no currency of its own.
    let hs = w.env.sandbox.hubspot();
    hs.set_company_currency(P1, Some("CAD"))?;
    let contact = hs.create_contact(P1, [("email", "ada@example.com")])?;
    let deal = hs.create_deal(
        P1,
        [("dealname", "Anvils"), ("dealstage", "closedwon")],
        vec![sandbox::props([
            ("hs_sku", "SKU-1"),
            ("name", "Anvil"),
            ("price", "10.00"),
            ("quantity", "3"),
        ])],
        Some(contact),
    )?;
    let p = preview(&w, &s, deal).await;
    assert!(p.body.contains("Not sendable"), "{}", p.body);
    assert!(p.body.contains("ItemCategory1"), "{}", p.body);

    // A constant category from the page completes the items.
    let a = w
        .submit(
            &s,
            "/mappings/add",
            &[
                ("object_type", "deals"),
                ("from", "line_item{i}.hs_sku"),
                ("const", "Hardware"),
                ("to", "ItemCategory{i}"),
            ],
        )
        .await;
    assert!(a.body.contains("Mapping added"), "{}", a.body);
    assert!(
        a.body.contains("&quot;Hardware&quot; (constant)")
            || a.body.contains("\"Hardware\" (constant)"),
        "{}",
        a.body
    );
    assert!(
        a.body.contains("id=\"unmapped-deals\">All required"),
        "{}",
        a.body
    );
    let p = preview(&w, &s, deal).await;
    assert!(p.body.contains("Would send"), "{}", p.body);
    for (param, value) in [
        ("ItemCategory1", "Hardware"),
        ("ItemQuantity1", "3"),
        ("CurrencyCode", "CAD"),
    ] {
        assert!(
            p.body.contains(&format!(
                "<td><code>{param}</code></td><td class=\"wrap\">{value}</td>"
            )),
            "{param}: {}",
            p.body
        );
    }
    assert!(p.body.contains("company currency"), "{}", p.body);
    w.finish().await;
    Ok(())
}
