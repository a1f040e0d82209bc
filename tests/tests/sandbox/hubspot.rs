//! The fake HubSpot against the documented shapes: CRM reads, batch limits
//! and 207s, associations, properties, pipelines, search, rate limits and
//! 429 bodies, faults, OAuth, and deterministic seeding.

// In tests a panic is the failure report.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use sandbox::{ObjectType, PortalSeed, Sandbox, SandboxConfig};
use serde_json::{Value, json};

const PORTAL: u64 = 1001;
const TOKEN: &str = "pat-sandbox-1001";

fn config() -> SandboxConfig {
    SandboxConfig {
        portals: vec![PortalSeed::sized(PORTAL, 40), PortalSeed::sized(2002, 5)],
        ..Default::default()
    }
}

async fn start(cfg: SandboxConfig) -> (Sandbox, reqwest::Client) {
    let sb = Sandbox::start(cfg).await.expect("sandbox starts");
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    (sb, client)
}

async fn get(client: &reqwest::Client, url: String) -> (u16, reqwest::header::HeaderMap, Value) {
    let resp = client
        .get(url)
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("request");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, headers, resp.json().await.unwrap_or(Value::Null))
}

async fn post(client: &reqwest::Client, url: String, body: Value) -> (u16, Value) {
    let resp = client
        .post(url)
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await
        .expect("request");
    (
        resp.status().as_u16(),
        resp.json().await.unwrap_or(Value::Null),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn seeding_is_deterministic_and_has_the_seed_properties() {
    let a = Sandbox::start(config()).await.unwrap();
    let b = Sandbox::start(config()).await.unwrap();
    let c = Sandbox::start(SandboxConfig {
        seed: 7,
        ..config()
    })
    .await
    .unwrap();
    for t in ObjectType::ALL {
        assert_eq!(
            a.hubspot().objects(PORTAL, t),
            b.hubspot().objects(PORTAL, t),
            "{t}"
        );
    }
    let contacts = a.hubspot().objects(PORTAL, ObjectType::Contacts);
    assert_eq!(contacts.len(), 40);
    assert_ne!(contacts, c.hubspot().objects(PORTAL, ObjectType::Contacts));
    for name in [
        "lifecyclestage",
        "hs_object_id",
        "hs_lead_status",
        "lastmodifieddate",
        "company",
        "city",
        "country",
        "zip",
        "email",
        "firstname",
        "lastname",
        "createdate",
    ] {
        assert!(
            contacts[0].properties.contains_key(name),
            "contact lacks {name}"
        );
    }
    assert!(
        contacts
            .iter()
            .any(|c| c.properties.contains_key("custom_impact_click_id"))
    );
    let deal = &a.hubspot().objects(PORTAL, ObjectType::Deals)[0];
    for name in [
        "dealname",
        "dealstage",
        "pipeline",
        "amount",
        "closedate",
        "hs_deal_stage_probability",
        "hs_lastmodifieddate",
        "createdate",
        "dealtype",
    ] {
        assert!(deal.properties.contains_key(name), "deal lacks {name}");
    }
    let items = a
        .hubspot()
        .associated(PORTAL, ObjectType::Deals, deal.id, ObjectType::LineItems);
    assert!(!items.is_empty());
    let item = a
        .hubspot()
        .object(PORTAL, ObjectType::LineItems, items[0])
        .unwrap();
    for name in [
        "name",
        "hs_sku",
        "price",
        "quantity",
        "amount",
        "hs_line_item_currency_code",
        "description",
    ] {
        assert!(item.properties.contains_key(name), "line item lacks {name}");
    }
    a.shutdown().await;
    b.shutdown().await;
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn object_read_returns_strings_requested_properties_and_associations() {
    let (sb, client) = start(config()).await;
    let hs = sb.hubspot();
    let contact = hs
        .create_contact(
            PORTAL,
            [("email", "ada@example.com"), ("lifecyclestage", "lead")],
        )
        .unwrap();
    let item = sandbox::props([
        ("name", "Anvil"),
        ("hs_sku", "SKU-1"),
        ("price", "10.00"),
        ("quantity", "2"),
    ]);
    let deal = hs
        .create_deal(
            PORTAL,
            [("dealname", "Big one"), ("dealstage", "closedwon")],
            vec![item],
            Some(contact),
        )
        .unwrap();

    let url = format!(
        "{}/crm/v3/objects/deals/{deal}?properties=dealstage,amount,no_such_prop,deal_contact_id&associations=line_items,contacts",
        sb.hubspot_url()
    );
    let (status, headers, body) = get(&client, url).await;
    assert_eq!(status, 200);
    assert_eq!(headers["x-hubspot-ratelimit-max"], "110");
    assert_eq!(body["id"], deal.to_string());
    let p = &body["properties"];
    assert_eq!(p["dealstage"], "closedwon");
    assert_eq!(p["amount"], "20.00");
    assert_eq!(p["hs_object_id"], deal.to_string());
    assert_eq!(p["deal_contact_id"], contact.to_string());
    assert!(
        p.get("no_such_prop").is_none(),
        "unknown properties are ignored"
    );
    assert!(
        p.as_object()
            .unwrap()
            .values()
            .all(|v| v.is_string() || v.is_null())
    );
    assert!(body["createdAt"].as_str().unwrap().ends_with('Z'));
    assert_eq!(body["archived"], false);
    let li = &body["associations"]["line_items"]["results"];
    assert_eq!(li.as_array().unwrap().len(), 1);
    assert_eq!(li[0]["type"], "deal_to_line_item");
    assert_eq!(
        body["associations"]["contacts"]["results"][0]["id"],
        contact.to_string()
    );

    let (status, _, body) = get(
        &client,
        format!("{}/crm/v3/objects/deals/999", sb.hubspot_url()),
    )
    .await;
    assert_eq!(
        (status, body["category"].as_str()),
        (404, Some("OBJECT_NOT_FOUND"))
    );
    let resp = client
        .get(format!("{}/crm/v3/objects/deals/{deal}", sb.hubspot_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["category"], "INVALID_AUTHENTICATION");
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn batch_read_limits_and_207_for_missing_ids() {
    let (sb, client) = start(config()).await;
    let url = format!("{}/crm/v3/objects/contacts/batch/read", sb.hubspot_url());
    let inputs: Vec<Value> = (0..101)
        .map(|i| json!({"id": (1_000_001 + i).to_string()}))
        .collect();
    let (status, body) = post(
        &client,
        url.clone(),
        json!({"properties": ["email"], "inputs": inputs}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["status"], "error");
    assert_eq!(body["category"], "VALIDATION_ERROR");
    assert!(body["correlationId"].is_string());

    let with_history: Vec<Value> = (0..51)
        .map(|i| json!({"id": (1_000_001 + i).to_string()}))
        .collect();
    let (status, _) = post(
        &client,
        url.clone(),
        json!({"propertiesWithHistory": ["email"], "inputs": with_history}),
    )
    .await;
    assert_eq!(status, 400, "50 inputs at most with propertiesWithHistory");

    let ids = ["1000001", "1000002", "999", "1000003", "12"];
    let inputs: Vec<Value> = ids.iter().map(|i| json!({"id": i})).collect();
    let (status, body) = post(
        &client,
        url.clone(),
        json!({"properties": ["email", "lifecyclestage"], "inputs": inputs}),
    )
    .await;
    assert_eq!(status, 207);
    assert_eq!(body["status"], "COMPLETE");
    assert_eq!(body["results"].as_array().unwrap().len(), 3);
    assert_eq!(body["results"][0]["properties"]["hs_object_id"], "1000001");
    assert!(body["results"][0].get("associations").is_none());
    let err = &body["errors"][0];
    assert_eq!(err["status"], "error");
    assert_eq!(err["category"], "OBJECT_NOT_FOUND");
    assert_eq!(err["context"]["ids"], json!(["999", "12"]));

    let inputs: Vec<Value> = ids[..2].iter().map(|i| json!({"id": i})).collect();
    let (status, body) = post(&client, url, json!({"inputs": inputs})).await;
    assert_eq!(status, 200);
    assert!(body.get("errors").is_none());
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn associations_properties_pipelines_and_search() {
    let (sb, client) = start(config()).await;
    let base = sb.hubspot_url();
    let deal = sb.hubspot().objects(PORTAL, ObjectType::Deals)[0].id;
    let items = sb
        .hubspot()
        .associated(PORTAL, ObjectType::Deals, deal, ObjectType::LineItems);

    let (status, _, body) = get(
        &client,
        format!("{base}/crm/v4/objects/deals/{deal}/associations/line_items?limit=500"),
    )
    .await;
    assert_eq!(status, 200);
    let got: Vec<u64> = body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["toObjectId"].as_u64().unwrap())
        .collect();
    assert_eq!(got, items);
    assert_eq!(body["results"][0]["associationTypes"][0]["typeId"], 19);

    let (status, body) = post(
        &client,
        format!("{base}/crm/v4/associations/deals/line_items/batch/read"),
        json!({"inputs": [{"id": deal.to_string()}, {"id": "3999999"}]}),
    )
    .await;
    assert_eq!(status, 207);
    assert_eq!(body["results"][0]["from"]["id"], deal.to_string());
    assert_eq!(
        body["results"][0]["to"].as_array().unwrap().len(),
        items.len()
    );
    assert_eq!(
        body["errors"][0]["context"]["fromObjectId"],
        json!(["3999999"])
    );

    let (_, _, body) = get(&client, format!("{base}/crm/v3/properties/contacts")).await;
    let props = body["results"].as_array().unwrap();
    let find = |n: &str| props.iter().find(|p| p["name"] == n).cloned().unwrap();
    assert_eq!(find("email")["hubspotDefined"], true);
    assert!(
        find("custom_impact_click_id")
            .get("hubspotDefined")
            .is_none(),
        "custom properties lack the flag"
    );
    let (_, _, body) = get(&client, format!("{base}/crm/v3/properties/deals")).await;
    assert!(
        body["results"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "deal_contact_id" && p.get("hubspotDefined").is_none())
    );

    let (_, _, body) = get(&client, format!("{base}/crm/v3/pipelines/deals")).await;
    let default = &body["results"][0];
    let stage = default["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "closedwon")
        .cloned()
        .unwrap();
    assert_eq!(stage["label"], "Closed Won");
    assert_eq!(stage["metadata"]["isClosed"], "true");
    let custom = &body["results"][1];
    assert!(
        custom["stages"][0]["id"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .is_ok(),
        "custom stages are numeric"
    );

    let since = "2026-02-01T00:00:00Z";
    let search = json!({
        "filterGroups": [{"filters": [{"propertyName": "lastmodifieddate", "operator": "GTE", "value": since}]}],
        "sorts": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
        "properties": ["email", "lastmodifieddate"],
        "limit": 5,
    });
    let (status, body) = post(
        &client,
        format!("{base}/crm/v3/objects/contacts/search"),
        search.clone(),
    )
    .await;
    assert_eq!(status, 200);
    let expected = sb
        .hubspot()
        .objects(PORTAL, ObjectType::Contacts)
        .iter()
        .filter(|c| c.properties["lastmodifieddate"].as_str() >= since)
        .count();
    assert_eq!(body["total"], expected);
    let dates: Vec<&str> = body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["properties"]["lastmodifieddate"].as_str().unwrap())
        .collect();
    assert!(dates.windows(2).all(|w| w[0] <= w[1]) && dates.iter().all(|d| *d >= since));
    assert_eq!(body["paging"]["next"]["after"], "5");
    let (status, _) = post(
        &client,
        format!("{base}/crm/v3/objects/contacts/search"),
        json!({"limit": 201}),
    )
    .await;
    assert_eq!(status, 400);
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn rate_limit_headers_and_429_body() {
    let (sb, client) = start(SandboxConfig {
        rate_limit_per_10s: Some(5),
        ..config()
    })
    .await;
    let url = format!("{}/crm/v3/objects/contacts/1000001", sb.hubspot_url());
    for remaining in (0..5).rev() {
        let (status, headers, _) = get(&client, url.clone()).await;
        assert_eq!(status, 200);
        assert_eq!(headers["x-hubspot-ratelimit-max"], "5");
        assert_eq!(
            headers["x-hubspot-ratelimit-remaining"],
            remaining.to_string().as_str()
        );
        assert_eq!(
            headers["x-hubspot-ratelimit-interval-milliseconds"],
            "10000"
        );
    }
    let resp = client.get(url).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["x-hubspot-ratelimit-remaining"], "0");
    let text = resp.text().await.unwrap();
    let body: Value = serde_json::from_str(&text).unwrap();
    let keys: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys.len(), 5);
    assert!(text.starts_with(r#"{"status":"error","message":"You have reached your ten_secondly_rolling limit.","errorType":"RATE_LIMIT","correlationId":""#));
    assert!(text.ends_with(r#"","policyName":"TEN_SECONDLY_ROLLING"}"#));
    assert!(uuid::Uuid::parse_str(body["correlationId"].as_str().unwrap()).is_ok());
    assert_eq!(sb.hubspot().api_calls(PORTAL), 6);
    assert_eq!(sb.hubspot().rate_limited(PORTAL), 1);
    // Budgets are per portal.
    let other = client
        .get(format!(
            "{}/crm/v3/objects/contacts/1000001",
            sb.hubspot_url()
        ))
        .bearer_auth("pat-sandbox-2002")
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 200);
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn latency_errors_and_outages() {
    let (sb, client) = start(config()).await;
    let url = format!("{}/crm/v3/objects/contacts/1000001", sb.hubspot_url());
    sb.hubspot().set_error_rate(1.0);
    assert_eq!(get(&client, url.clone()).await.0, 500);
    sb.hubspot().set_error_rate(0.0);
    sb.hubspot().outage(Duration::from_millis(300));
    assert_eq!(get(&client, url.clone()).await.0, 503);
    tokio::time::sleep(Duration::from_millis(350)).await;
    sb.hubspot().set_latency(Duration::from_millis(150));
    let t = std::time::Instant::now();
    assert_eq!(get(&client, url).await.0, 200);
    assert!(t.elapsed() >= Duration::from_millis(150));
    sb.shutdown().await;
}
