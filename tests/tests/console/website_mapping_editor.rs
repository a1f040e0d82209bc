//! The Field Mappings editor's parity with the portal document: value
//! maps, constants, order, how e-mail addresses and line items are sent,
//! the document's export and import on the page (version-checked, within
//! the document limits), and the live preview beside the editor; every
//! change checked against the `mappings` table.

use axum::http::StatusCode;
use serde_json::{Value, json};
use sqlx::Row;

use crate::support::website::{Answer, Login, WebEnv};

const P1: u64 = 1001;

async fn configured(w: &WebEnv) -> anyhow::Result<Login> {
    let login = w.install(P1).await?;
    crate::website_routes::configure_settings(w, &login).await;
    Ok(login)
}

/// The contacts rows as stored: (from, const, to, value_map), in order.
async fn rows(w: &WebEnv) -> Vec<(Option<String>, Option<String>, String, Option<Value>)> {
    sqlx::query(
        "SELECT source_from, source_const, target, value_map FROM mappings
         WHERE portal_id = $1 AND object_type = 'contacts' ORDER BY position",
    )
    .bind(P1 as i64)
    .fetch_all(&w.env.pool)
    .await
    .expect("rows")
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
    .collect()
}

async fn version(w: &WebEnv) -> i64 {
    sqlx::query("SELECT config_version FROM portals WHERE portal_id = $1")
        .bind(P1 as i64)
        .fetch_one(&w.env.pool)
        .await
        .expect("portal")
        .get(0)
}

async fn add(w: &WebEnv, login: &Login, fields: &[(&str, &str)]) -> Answer {
    let mut all = vec![("object_type", "contacts")];
    all.extend_from_slice(fields);
    w.submit(login, "/mappings/add", &all).await
}

#[tokio::test]
async fn value_maps_constants_order_and_hashing_are_edited_on_the_page() -> anyhow::Result<()> {
    let w = WebEnv::start().await?;
    let login = configured(&w).await?;
    let a = add(
        &w,
        &login,
        &[
            ("from", "hs_lead_status"),
            ("to", "CustomerStatus"),
            ("value_map", "NEW = 1\nOPEN = 2\n"),
        ],
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    add(&w, &login, &[("from", "email"), ("to", "CustomerEmail")]).await;
    add(&w, &login, &[("const", "Web"), ("to", "Note")]).await;
    let stored = rows(&w).await;
    assert_eq!(stored.len(), 3);
    assert_eq!(stored[0].3, Some(json!({"NEW": "1", "OPEN": "2"})));
    assert_eq!(stored[2].1.as_deref(), Some("Web"));
    let page = w.get("/mappings", Some(&login.cookie)).await;
    let email_row = page
        .body
        .split("id=\"row-contacts-1\"")
        .nth(1)
        .unwrap_or_default();
    assert!(email_row.contains("SHA-1 hash"), "{}", page.body);
    assert!(page.body.contains("2 values"), "{}", page.body);
    assert!(
        page.body.contains(">NEW = 1\nOPEN = 2</textarea>"),
        "{}",
        page.body
    );

    // A row's value map replaced, then the order changed.
    let v = version(&w).await.to_string();
    let a = w
        .submit(
            &login,
            "/mappings/value-map",
            &[
                ("object_type", "contacts"),
                ("index", "0"),
                ("version", &v),
                ("value_map", "NEW = 10"),
            ],
        )
        .await;
    assert!(a.body.contains("Value map saved"), "{}", a.body);
    assert_eq!(rows(&w).await[0].3, Some(json!({"NEW": "10"})));
    let bad = w
        .submit(
            &login,
            "/mappings/value-map",
            &[
                ("object_type", "contacts"),
                ("index", "0"),
                ("value_map", "no separator"),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    let v = version(&w).await.to_string();
    let a = w
        .submit(
            &login,
            "/mappings/move",
            &[
                ("object_type", "contacts"),
                ("index", "2"),
                ("version", &v),
                ("direction", "up"),
            ],
        )
        .await;
    assert!(a.body.contains("Mapping moved"), "{}", a.body);
    let order: Vec<String> = rows(&w).await.into_iter().map(|r| r.2).collect();
    assert_eq!(order, ["CustomerStatus", "Note", "CustomerEmail"]);
    // The first row cannot go up; a stale version changes nothing.
    let a = w
        .submit(
            &login,
            "/mappings/move",
            &[
                ("object_type", "contacts"),
                ("index", "0"),
                ("direction", "up"),
            ],
        )
        .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    let a = w
        .submit(
            &login,
            "/mappings/move",
            &[
                ("object_type", "contacts"),
                ("index", "1"),
                ("version", &v),
                ("direction", "down"),
            ],
        )
        .await;
    assert_eq!(a.status, StatusCode::CONFLICT, "{}", a.body);
    let again: Vec<String> = rows(&w).await.into_iter().map(|r| r.2).collect();
    assert_eq!(again, order);
    // An empty map removes it.
    let v = version(&w).await.to_string();
    w.submit(
        &login,
        "/mappings/value-map",
        &[
            ("object_type", "contacts"),
            ("index", "0"),
            ("version", &v),
            ("value_map", " "),
        ],
    )
    .await;
    assert_eq!(rows(&w).await[0].3, None);
    w.finish().await;
    Ok(())
}

#[tokio::test]
async fn the_document_is_exported_and_imported_on_the_page() -> anyhow::Result<()> {
    let w = WebEnv::start().await?;
    let login = configured(&w).await?;
    add(&w, &login, &[("from", "hs_object_id"), ("to", "OrderId")]).await;
    add(
        &w,
        &login,
        &[
            ("from", "hs_lead_status"),
            ("to", "CustomerStatus"),
            ("value_map", "NEW = 1"),
        ],
    )
    .await;
    let a = w.get("/mappings/export", Some(&login.cookie)).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(
        a.headers.get("etag").and_then(|v| v.to_str().ok()),
        Some(format!("\"{}\"", version(&w).await).as_str())
    );
    assert!(a.headers.get("content-disposition").is_some());
    let mut doc = a.json();
    assert_eq!(doc["portal_id"], P1);
    assert!(
        doc["impact"].get("auth_token").is_none(),
        "no secret exported"
    );
    let exported: Vec<String> = doc["mappings"]["contacts"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| r["to"].as_str().unwrap_or_default().to_owned())
        .collect();
    let stored: Vec<String> = rows(&w).await.into_iter().map(|r| r.2).collect();
    assert_eq!(exported, stored);
    assert_eq!(
        doc["mappings"]["contacts"][1]["value_map"],
        json!({"NEW": "1"})
    );

    // Import: the rows reversed, a new value map.
    let list = doc["mappings"]["contacts"].as_array_mut().expect("rows");
    list.reverse();
    list[0]["value_map"] = json!({"NEW": "7", "OPEN": "8"});
    let v = version(&w).await.to_string();
    let text = doc.to_string();
    let a = w
        .submit(
            &login,
            "/mappings/import",
            &[("version", &v), ("document", &text)],
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert!(a.body.contains("Document imported"), "{}", a.body);
    let after = rows(&w).await;
    assert_eq!(after[0].2, "CustomerStatus");
    assert_eq!(after[0].3, Some(json!({"NEW": "7", "OPEN": "8"})));
    assert_eq!(after[1].2, "OrderId");

    // Refused: a stale version, another portal's document, over the limits, not JSON.
    let before = rows(&w).await;
    let a = w
        .submit(
            &login,
            "/mappings/import",
            &[("version", &v), ("document", &text)],
        )
        .await;
    assert_eq!(a.status, StatusCode::CONFLICT, "{}", a.body);
    let mut other = doc.clone();
    other["portal_id"] = json!(1002);
    let a = w
        .submit(
            &login,
            "/mappings/import",
            &[("document", &other.to_string())],
        )
        .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(a.body.contains("portal 1002"), "{}", a.body);
    let mut big = doc.clone();
    let many: serde_json::Map<String, Value> = (0..=domain::portal::limits::MAX_VALUE_MAP_ENTRIES)
        .map(|i| (format!("v{i}"), json!("x")))
        .collect();
    big["mappings"]["contacts"][0]["value_map"] = Value::Object(many);
    let a = w
        .submit(
            &login,
            "/mappings/import",
            &[("document", &big.to_string())],
        )
        .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        a.body.contains("value_map: 501 entries; at most 500"),
        "{}",
        a.body
    );
    let a = w
        .submit(&login, "/mappings/import", &[("document", "{not json")])
        .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        a.body.contains("{not json</textarea>"),
        "the pasted text is kept"
    );
    assert_eq!(rows(&w).await, before);
    w.finish().await;
    Ok(())
}

#[tokio::test]
async fn the_preview_beside_the_editor_shows_parameters_sources_and_what_is_missing()
-> anyhow::Result<()> {
    let w = WebEnv::start().await?;
    let login = configured(&w).await?;
    add(
        &w,
        &login,
        &[("from", "custom_impact_click_id"), ("to", "ClickId")],
    )
    .await;
    add(
        &w,
        &login,
        &[
            ("from", "hs_lead_status"),
            ("to", "CustomerStatus"),
            ("value_map", "NEW = fresh"),
        ],
    )
    .await;
    let id = w.env.sandbox.hubspot().create_contact(
        P1,
        [
            ("lifecyclestage", "lead"),
            ("hs_lead_status", "NEW"),
            ("custom_impact_click_id", "pv-click"),
        ],
    )?;
    let id_text = id.to_string();
    let a = w
        .submit(
            &login,
            "/mappings/preview",
            &[("object_type", "contacts"), ("object_id", &id_text)],
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    // Required fields are missing: said, by name.
    assert!(a.body.contains("id=\"preview_problem\""), "{}", a.body);
    assert!(a.body.contains("id=\"preview_missing\""), "{}", a.body);
    for (from, to) in [
        ("lifecyclestage", "EventTypeCode"),
        ("contact_[lead_status]_id", "OrderId"),
        ("lastmodifieddate", "EventDate"),
    ] {
        add(&w, &login, &[("from", from), ("to", to)]).await;
    }
    let a = w
        .submit(
            &login,
            "/mappings/preview",
            &[("object_type", "contacts"), ("object_id", &id_text)],
        )
        .await;
    assert!(!a.body.contains("id=\"preview_missing\""), "{}", a.body);
    let table = a
        .body
        .split("id=\"preview_params\"")
        .nth(1)
        .unwrap_or_default();
    assert!(table.contains("<td><code>ClickId</code></td><td class=\"wrap\">pv-click</td><td><code>custom_impact_click_id</code></td>"), "{}", a.body);
    assert!(
        table.contains(
            "<td class=\"wrap\">fresh</td><td><code>hs_lead_status (through its value map)</code>"
        ),
        "{}",
        a.body
    );
    assert!(table.contains("set by the connector"), "{}", a.body);
    w.finish().await;
    Ok(())
}
