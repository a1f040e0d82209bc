//! The fake impact.com against the documented shapes: auth, validation
//! errors naming the field, QUEUED, API submissions and CONV_DUPLICATE,
//! Actions, recording and queries, faults.

// In tests a panic is the failure report.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use sandbox::impact::{ErrorStyle, Fault};
use sandbox::{FaultPlan, Sandbox, SandboxConfig, SubmissionKind};
use serde_json::Value;

const SID: &str = "IRsandbox";
const TOKEN: &str = "sandbox-token";

fn valid() -> Vec<(&'static str, String)> {
    [
        ("CampaignId", "1000"),
        ("EventTypeCode", "ClosedWon"),
        ("EventDate", "2026-08-01T23:55:24Z"),
        ("OrderId", "9001_closedwon"),
        ("CustomerId", "501"),
        ("ClickId", "SKhRQaSXwxyOUQ"),
        ("CurrencyCode", "USD"),
        ("ItemSku1", "SKU-1"),
        ("ItemName1", "Anvil"),
        ("ItemCategory1", "Hardware"),
        ("ItemQuantity1", "2"),
        ("ItemPrice1", "10"),
    ]
    .into_iter()
    .map(|(k, v)| (k, v.to_string()))
    .collect()
}

fn with(changes: &[(&'static str, Option<&str>)]) -> Vec<(&'static str, String)> {
    let mut p = valid();
    for (k, v) in changes {
        p.retain(|(name, _)| name != k);
        if let Some(v) = v {
            p.push((k, v.to_string()));
        }
    }
    p
}

async fn post(sb: &Sandbox, form: &[(&str, String)]) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}/Advertisers/{SID}/Conversions", sb.impact_url()))
        .basic_auth(SID, Some(TOKEN))
        .header("Accept", "application/json")
        .form(form)
        .send()
        .await
        .unwrap()
}

async fn submission_status(sb: &Sandbox, queued_uri: &str) -> Value {
    reqwest::Client::new()
        .get(format!("{}{queued_uri}", sb.impact_url()))
        .basic_auth(SID, Some(TOKEN))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn queued_then_complete_and_duplicates_per_event_type() {
    let sb = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let resp = post(&sb, &valid()).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().contains_key("x-ratelimit-limit"));
    assert!(resp.headers().contains_key("x-ratelimit-remaining"));
    assert!(resp.headers().contains_key("x-ratelimit-reset"));
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["Status"], "QUEUED");
    let uri = body["QueuedUri"].as_str().unwrap().to_string();
    assert!(uri.starts_with(&format!("/Advertisers/{SID}/APISubmissions/")));
    let status = submission_status(&sb, &uri).await;
    assert_eq!(status["Status"], "Complete");
    assert!(status["ErrorReason"].is_null());

    // Same OrderId, same event type: queued, then CONV_DUPLICATE.
    let again: Value = post(&sb, &valid()).await.json().await.unwrap();
    assert_eq!(again["Status"], "QUEUED");
    let status = submission_status(&sb, again["QueuedUri"].as_str().unwrap()).await;
    assert_eq!(status["ErrorReason"], "CONV_DUPLICATE");
    assert!(status["ErrorType"].is_string());
    // Same OrderId, another event type: fine.
    let other: Value = post(&sb, &with(&[("EventTypeCode", Some("SQL"))]))
        .await
        .json()
        .await
        .unwrap();
    assert!(
        submission_status(&sb, other["QueuedUri"].as_str().unwrap()).await["ErrorReason"].is_null()
    );

    let imp = sb.impact();
    let subs = imp.by_order_id("9001_closedwon");
    assert_eq!(subs.len(), 3);
    assert!(subs[1].is_duplicate() && !subs[0].is_duplicate());
    assert_eq!(
        subs[0].params[0],
        ("CampaignId".to_string(), "1000".to_string())
    );
    assert_eq!(subs[0].map()["ItemSku1"], "SKU-1");
    assert!(subs[0].accept_json);
    assert_eq!(imp.submissions_for(SID).len(), 3);
    assert!(imp.submissions_for("IRother").is_empty());
    assert_eq!(imp.since(subs[2].received_at).len(), 1);

    // JSON bodies are accepted too; the processing delay shows Queued first.
    imp.set_processing_delay(Duration::from_secs(60));
    let json: serde_json::Map<String, Value> = with(&[("OrderId", Some("json-1"))])
        .into_iter()
        .map(|(k, v)| (k.to_string(), Value::from(v)))
        .collect();
    let resp = reqwest::Client::new()
        .post(format!("{}/Advertisers/{SID}/Conversions", sb.impact_url()))
        .basic_auth(SID, Some(TOKEN))
        .json(&json)
        .send()
        .await
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        submission_status(&sb, body["QueuedUri"].as_str().unwrap()).await["Status"],
        "Queued"
    );
    assert!(!imp.by_order_id("json-1")[0].accept_json);

    // The control API and the page show what arrived.
    let list: Value = reqwest::get(format!(
        "{}/_sandbox/submissions?order_id=9001_closedwon&account={SID}",
        sb.impact_url()
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(list["count"], 3);
    assert_eq!(
        list["submissions"][0]["fields"]["ClickId"],
        "SKhRQaSXwxyOUQ"
    );
    let page = reqwest::get(sb.impact_url())
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("9001_closedwon"));
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn credentials_are_checked() {
    let sb = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let client = reqwest::Client::new();
    let url = format!("{}/Advertisers/{SID}/Conversions", sb.impact_url());
    for auth in [None, Some(TOKEN.replace('s', "x"))] {
        let mut req = client.post(&url).form(&valid());
        if let Some(t) = auth {
            req = req.basic_auth(SID, Some(t));
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 401);
        assert_eq!(resp.json::<Value>().await.unwrap()["Status"], "ERROR");
    }
    assert!(sb.impact().submissions().is_empty());
    assert_eq!(sb.impact().requests().len(), 2);
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn validation_errors_name_the_field() {
    let sb = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let cases: Vec<(&str, Vec<(&'static str, String)>)> = vec![
        ("OrderId", with(&[("OrderId", None)])),
        ("OrderId", with(&[("OrderId", Some(&"x".repeat(65)))])),
        ("CampaignId", with(&[("CampaignId", None)])),
        ("CampaignId", with(&[("CampaignId", Some("2000"))])),
        ("EventTypeCode", with(&[("EventTypeCode", None)])),
        ("ActionTrackerId", with(&[("ActionTrackerId", Some("abc"))])),
        (
            "EventDate",
            with(&[("EventDate", Some("2026-08-01 23:55:24"))]),
        ),
        ("EventDate", with(&[("EventDate", None)])),
        ("ClickId", with(&[("ClickId", None), ("CustomerId", None)])),
        ("ClickId", with(&[("ClickId", Some(&"c".repeat(65)))])),
        (
            "CustomerId",
            with(&[("CustomerId", Some("ada@example.com"))]),
        ),
        (
            "CustomerEmail",
            with(&[("CustomerEmail", Some("ada@example.com"))]),
        ),
        ("Text1", with(&[("Text1", Some(&"t".repeat(65)))])),
        ("CurrencyCode", with(&[("CurrencyCode", None)])),
        ("ItemSubTotal1", with(&[("ItemSubTotal1", Some("20"))])),
        ("ItemSku2", with(&[("ItemSku3", Some("SKU-3"))])),
        ("Amount", with(&[("Amount", Some("20.00"))])),
        ("ItemQuantity1", with(&[("ItemQuantity1", Some("two"))])),
        // impact.com's item-level reference: SKU, category and quantity for
        // every item sent.
        ("ItemSku1", with(&[("ItemSku1", None)])),
        ("ItemCategory1", with(&[("ItemCategory1", None)])),
        ("ItemQuantity1", with(&[("ItemQuantity1", None)])),
        ("ItemQuantity1", with(&[("ItemQuantity1", Some(""))])),
        (
            "EventTypeCode",
            with(&[("EventTypeCode", Some(&"e".repeat(65)))]),
        ),
        (
            "CustomProfileId",
            with(&[("CustomProfileId", Some(&"p".repeat(71)))]),
        ),
        (
            "PaymentType",
            with(&[("PaymentType", Some(&"c".repeat(33)))]),
        ),
        ("Bogus", with(&[("Bogus", Some("1"))])),
    ];
    for (field, form) in cases {
        let resp = post(&sb, &form).await;
        assert_eq!(resp.status(), 400, "{field}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["Status"], "ERROR");
        assert_eq!(body["Message"], "Validation Failed");
        let fields: Vec<&str> = body["Errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["Field"].as_str().unwrap())
            .collect();
        assert!(fields.contains(&field), "expected {field}, got {fields:?}");
    }
    // Valid variants.
    let sha1 = "a".repeat(40);
    for form in [
        with(&[("EventDate", Some("NOW"))]),
        with(&[
            ("EventDate", Some("2026-05-01T10:30:01-07:00")),
            ("CustomerEmail", Some(&sha1)),
        ]),
        with(&[
            ("ItemPrice1", None),
            ("ItemSubTotal1", Some("20.00")),
            ("OrderId", Some("v2")),
        ]),
        with(&[
            ("ItemSku1", None),
            ("ItemName1", None),
            ("ItemCategory1", None),
            ("ItemQuantity1", None),
            ("ItemPrice1", None),
            ("Amount", Some("1500.00")),
            ("OrderId", Some("v3")),
        ]),
        with(&[
            ("EventTypeCode", Some(&"e".repeat(64))),
            ("CustomProfileId", Some(&"p".repeat(70))),
            ("PaymentType", Some(&"c".repeat(32))),
            ("OrderId", Some("v4")),
        ]),
    ] {
        assert_eq!(post(&sb, &form).await.status(), 200, "{form:?}");
    }
    sb.impact().set_error_style(ErrorStyle::Lowercase);
    let body: Value = post(&sb, &with(&[("OrderId", None)]))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["errors"][0]["field"], "OrderId");
    assert_eq!(body["errors"][0]["level"], "ERROR");
    assert_eq!(
        sb.impact()
            .requests()
            .iter()
            .filter(|r| r.http_status == 400)
            .count(),
        27
    );
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn actions_update_and_reversal() {
    let sb = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let client = reqwest::Client::new();
    let url = format!("{}/Advertisers/{SID}/Actions", sb.impact_url());
    // An action impact.com does not know is refused.
    let update = [
        ("ActionTrackerId", "123"),
        ("OrderId", "9001_closedwon"),
        ("Reason", "ORDER_UPDATE"),
        ("Amount", "0"),
    ];
    let resp = client
        .put(&url)
        .basic_auth(SID, Some(TOKEN))
        .form(&update)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["Errors"][0]["Field"],
        "OrderId"
    );
    // The conversion creates the action (sent by code; the code's tracker id
    // is 123, declared through the control API).
    let declared = client
        .put(format!("{}/_sandbox/event-types", sb.impact_url()))
        .json(&serde_json::json!({ "ClosedWon": 123 }))
        .send()
        .await
        .unwrap();
    assert_eq!(declared.json::<Value>().await.unwrap()["ClosedWon"], 123);
    let resp = post(&sb, &valid()).await;
    assert_eq!(resp.status(), 200);
    let resp = client
        .put(&url)
        .basic_auth(SID, Some(TOKEN))
        .form(&[
            ("ActionTrackerId", "123"),
            ("OrderId", "9001_closedwon"),
            ("Reason", "ORDER_UPDATE"),
            ("Amount", "0"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap()["Status"], "QUEUED");
    let resp = client
        .put(&url)
        .basic_auth(SID, Some(TOKEN))
        .form(&[("ActionId", "1.2.3")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["Errors"][0]["Field"],
        "Reason"
    );
    let resp = client
        .delete(&url)
        .basic_auth(SID, Some(TOKEN))
        .form(&[("ActionId", "1.2.3"), ("DispositionCode", "ITEM_RETURNED")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    // A reversal by tracker id and OrderId; the action cannot be reversed twice.
    let reverse = [
        ("ActionTrackerId", "123"),
        ("OrderId", "9001_closedwon"),
        ("DispositionCode", "OTHER"),
    ];
    for expected in [200, 400] {
        let resp = client
            .delete(&url)
            .basic_auth(SID, Some(TOKEN))
            .form(&reverse)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), expected);
    }
    let kinds: Vec<SubmissionKind> = sb.impact().submissions().iter().map(|s| s.kind).collect();
    assert_eq!(
        kinds,
        [
            SubmissionKind::Conversion,
            SubmissionKind::ActionUpdate,
            SubmissionKind::ActionReversal,
            SubmissionKind::ActionReversal
        ]
    );
    assert_eq!(sb.impact().reversals().len(), 2);
    assert_eq!(sb.impact().modifications().len(), 1);
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn faults_429_5xx_drops_slow_and_windows() {
    let sb = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let imp = sb.impact();
    imp.fail_next([
        Fault::RateLimited,
        Fault::ServerError(502),
        Fault::Drop,
        Fault::DropAfterProcessing,
        Fault::SlowMs(200),
    ]);
    let resp = post(&sb, &valid()).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["x-ratelimit-remaining"], "0");
    assert_eq!(post(&sb, &valid()).await.status(), 502);
    let client = reqwest::Client::new();
    let send = || {
        client
            .post(format!("{}/Advertisers/{SID}/Conversions", sb.impact_url()))
            .basic_auth(SID, Some(TOKEN))
            .form(&valid())
            .send()
    };
    assert!(send().await.is_err(), "dropped before processing");
    assert!(imp.submissions().is_empty());
    assert!(send().await.is_err(), "dropped after processing");
    assert_eq!(imp.submissions().len(), 1, "processed although unanswered");
    let t = std::time::Instant::now();
    assert_eq!(post(&sb, &valid()).await.status(), 200);
    assert!(t.elapsed() >= Duration::from_millis(200));
    assert!(
        imp.submissions()[1].is_duplicate(),
        "the retry after a lost answer is a duplicate"
    );
    let statuses: Vec<u16> = imp.requests().iter().map(|r| r.http_status).collect();
    assert_eq!(statuses, [429, 502, 0, 200, 200]);

    imp.set_faults_for(
        FaultPlan {
            rate_limited: 1.0,
            ..Default::default()
        },
        Duration::from_millis(300),
    );
    assert_eq!(post(&sb, &valid()).await.status(), 429);
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(post(&sb, &valid()).await.status(), 200);
    imp.set_faults(FaultPlan {
        server_error: 1.0,
        ..Default::default()
    });
    assert_eq!(post(&sb, &valid()).await.status(), 503);
    imp.clear_faults();
    assert_eq!(post(&sb, &valid()).await.status(), 200);
    let waited = imp
        .wait_for_submissions(4, Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(waited.len(), 4);
    sb.shutdown().await;
}
