//! The fake impact.com's reads against impact.com's Brand API reference:
//! the Actions list (only credited conversions, impact.com's paging
//! envelope and date rules), a program (`Campaigns/{id}`: 200 only when the
//! SID, token and program belong together), multi-code `ErrorReason`s, and
//! the hourly rate limit every read counts against, with a window that can
//! be shortened for tests.

// In tests a panic is the failure report.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use sandbox::impact::ReadKind;
use sandbox::{Sandbox, SandboxConfig};
use serde_json::Value;

const SID: &str = "IRsandbox";
const TOKEN: &str = "sandbox-token";

fn conversion(order: &str) -> Vec<(&'static str, String)> {
    [
        ("CampaignId", "1000"),
        ("EventTypeCode", "ClosedWon"),
        ("EventDate", "2026-08-01T23:55:24Z"),
        ("OrderId", order),
        ("CustomerId", "501"),
        ("CurrencyCode", "USD"),
        ("Amount", "12.50"),
    ]
    .into_iter()
    .map(|(k, v)| (k, v.to_string()))
    .collect()
}

async fn post(sb: &Sandbox, order: &str) -> String {
    let body: Value = reqwest::Client::new()
        .post(format!("{}/Advertisers/{SID}/Conversions", sb.impact_url()))
        .basic_auth(SID, Some(TOKEN))
        .header("Accept", "application/json")
        .form(&conversion(order))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["QueuedUri"].as_str().unwrap().to_owned()
}

/// `GET {path}` as `user:password`: (status, remaining header, body).
async fn get(sb: &Sandbox, path: &str, user: &str, password: &str) -> (u16, Option<u32>, Value) {
    let resp = reqwest::Client::new()
        .get(format!("{}{path}", sb.impact_url()))
        .basic_auth(user, Some(password))
        .header("Accept", "application/json")
        .send()
        .await
        .unwrap();
    let remaining = resp
        .headers()
        .get("x-ratelimit-remaining")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let status = resp.status().as_u16();
    (status, remaining, resp.json().await.unwrap_or_default())
}

fn window() -> String {
    let now = chrono::Utc::now();
    let fmt =
        |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    format!(
        "StartDate={}&EndDate={}",
        fmt(now - chrono::Duration::hours(1)),
        fmt(now + chrono::Duration::minutes(1))
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn the_actions_list_shows_credited_conversions_in_pages() {
    let sb = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let imp = sb.impact();
    imp.set_outcome("rejected", "Contract Error", "CONTRACT_NOT_FOUND");
    for order in ["a", "b", "c", "rejected"] {
        post(&sb, order).await;
    }
    post(&sb, "a").await; // CONV_DUPLICATE: no second action

    let path = format!("/Advertisers/{SID}/Actions?CampaignId=1000&{}", window());
    let (status, remaining, page) = get(&sb, &path, SID, TOKEN).await;
    assert_eq!(status, 200, "{page}");
    assert!(remaining.is_some(), "rate-limit headers");
    assert_eq!(page["@total"], "3");
    assert_eq!(page["@page"], "1");
    assert_eq!(page["@pagesize"], "20000");
    assert_eq!(page["@nextpageuri"], "");
    let actions = page["Actions"].as_array().unwrap();
    let oids: Vec<&str> = actions.iter().map(|a| a["Oid"].as_str().unwrap()).collect();
    // Newest created first; the rejection and the duplicate are no actions.
    assert_eq!(oids, ["c", "b", "a"]);
    let a = &actions[2];
    assert_eq!(a["CampaignId"], "1000");
    assert_eq!(a["EventCode"], "ClosedWon");
    assert_eq!(a["State"], "PENDING");
    assert_eq!(a["Amount"], "12.50");
    assert!(
        a["ActionTrackerId"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .is_ok()
    );
    assert!(
        chrono::DateTime::parse_from_rfc3339(a["CreationDate"].as_str().unwrap()).is_ok(),
        "{a}"
    );
    assert!(
        a["Uri"]
            .as_str()
            .unwrap()
            .starts_with("/Advertisers/IRsandbox/Actions/1000.")
    );

    // Paging: follow @nextpageuri (pages made small for the test).
    imp.set_actions_min_page_size(2);
    let mut next = format!("{path}&PageSize=2");
    let mut seen = Vec::new();
    let mut pages = 0;
    while !next.is_empty() {
        let (status, _, page) = get(&sb, &next, SID, TOKEN).await;
        assert_eq!(status, 200, "{page}");
        assert_eq!(page["@numpages"], "2");
        pages += 1;
        for a in page["Actions"].as_array().unwrap() {
            seen.push(a["Oid"].as_str().unwrap().to_owned());
        }
        next = page["@nextpageuri"].as_str().unwrap().to_owned();
    }
    assert_eq!((pages, seen), (2, vec!["c".into(), "b".into(), "a".into()]));
    // More than ten pages is refused.
    imp.set_actions_min_page_size(1);
    for order in ["d", "e", "f", "g", "h", "i", "j", "k"] {
        post(&sb, order).await;
    }
    let (status, _, body) = get(&sb, &format!("{path}&PageSize=1"), SID, TOKEN).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["Message"].as_str().unwrap().contains("10 pages"));
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_actions_list_keeps_impact_com_s_rules() {
    let sb = Sandbox::start(SandboxConfig::default()).await.unwrap();
    post(&sb, "a").await;
    let base = format!("/Advertisers/{SID}/Actions");
    let now = chrono::Utc::now();
    let at = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    for (query, says) in [
        (window(), "CampaignId"),
        (format!("CampaignId=1000&StartDate={}", at(now)), "EndDate"),
        (
            format!(
                "CampaignId=1000&StartDate={}&EndDate={}",
                at(now - chrono::Duration::days(50)),
                at(now)
            ),
            "45 days",
        ),
        (
            format!("CampaignId=1000&StartDate=yesterday&EndDate={}", at(now)),
            "ISO 8601",
        ),
    ] {
        let (status, _, body) = get(&sb, &format!("{base}?{query}"), SID, TOKEN).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert!(
            body["Message"].as_str().unwrap().contains(says),
            "{query}: {body}"
        );
    }
    // Without dates: the last 7 days; another program: nothing.
    let (_, _, all) = get(&sb, &format!("{base}?CampaignId=1000"), SID, TOKEN).await;
    assert_eq!(all["@total"], "1");
    let (_, _, none) = get(&sb, &format!("{base}?CampaignId=2000"), SID, TOKEN).await;
    assert_eq!(none["@total"], "0");
    // Credentials as everywhere.
    let (status, _, _) = get(&sb, &format!("{base}?CampaignId=1000"), SID, "wrong").await;
    assert_eq!(status, 401);
    let reads = sb.impact().reads();
    assert!(reads.iter().all(|r| r.kind == ReadKind::Actions));
    assert_eq!(reads.last().map(|r| r.status), Some(401));
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_program_answers_only_for_its_own_account_and_token() {
    let mut cfg = SandboxConfig::default();
    cfg.impact_accounts.push(sandbox::ImpactAccount {
        account_sid: "IRother".into(),
        auth_token: "other-token".into(),
        program_ids: vec!["2000".into()],
    });
    let sb = Sandbox::start(cfg).await.unwrap();
    let path = |sid: &str, program: &str| format!("/Advertisers/{sid}/Campaigns/{program}");
    let (status, remaining, body) = get(&sb, &path(SID, "1000"), SID, TOKEN).await;
    assert_eq!(status, 200, "{body}");
    assert!(remaining.is_some());
    assert_eq!(body["Id"], "1000");
    assert_eq!(body["State"], "ACTIVE");
    assert_eq!(body["Uri"], "/Advertisers/IRsandbox/Campaigns/1000");
    assert!(body["Name"].is_string());
    // Another account's program, an unknown one: 404.
    for program in ["2000", "9999"] {
        let (status, _, body) = get(&sb, &path(SID, program), SID, TOKEN).await;
        assert_eq!(status, 404, "{program}: {body}");
    }
    // A wrong token: 401; another account's SID in the URL: 403.
    assert_eq!(get(&sb, &path(SID, "1000"), SID, "wrong").await.0, 401);
    assert_eq!(get(&sb, &path("IRother", "2000"), SID, TOKEN).await.0, 403);
    assert_eq!(
        get(&sb, &path("IRother", "2000"), "IRother", "other-token")
            .await
            .0,
        200
    );
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn error_reasons_list_several_codes() {
    let sb = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let imp = sb.impact();
    imp.set_outcome(
        "two",
        "Contract Error",
        "CONTRACT_NOT_FOUND RESTRICTED_PROMOCODE",
    );
    imp.set_outcome("typed", "Validation", "");
    let two = post(&sb, "two").await;
    let again = post(&sb, "two").await;
    let typed = post(&sb, "typed").await;
    let (_, _, body) = get(&sb, &two, SID, TOKEN).await;
    assert_eq!(
        body["ErrorReason"],
        "CONTRACT_NOT_FOUND RESTRICTED_PROMOCODE"
    );
    let (_, _, body) = get(&sb, &again, SID, TOKEN).await;
    assert_eq!(
        body["ErrorReason"],
        "CONTRACT_NOT_FOUND RESTRICTED_PROMOCODE CONV_DUPLICATE"
    );
    let (_, _, body) = get(&sb, &typed, SID, TOKEN).await;
    assert_eq!(
        (body["ErrorType"].as_str(), body["ErrorReason"].as_str()),
        (Some("Validation"), Some(""))
    );
    assert!(imp.by_order_id("two")[1].is_duplicate());
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn every_read_counts_against_a_window_that_tests_can_shorten() {
    let sb = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let imp = sb.impact();
    imp.set_rate_limit(Some(3));
    imp.set_rate_window(Duration::from_millis(1500));
    imp.set_conversions_unlimited(true);
    let uri = post(&sb, "a").await;
    post(&sb, "b").await;
    let program = format!("/Advertisers/{SID}/Campaigns/1000");
    let list = format!("/Advertisers/{SID}/Actions?CampaignId=1000");
    // Conversions were free; three reads of any kind, then 429.
    assert_eq!(get(&sb, &uri, SID, TOKEN).await.1, Some(2));
    assert_eq!(get(&sb, &program, SID, TOKEN).await.1, Some(1));
    assert_eq!(get(&sb, &list, SID, TOKEN).await.1, Some(0));
    let (status, remaining, _) = get(&sb, &list, SID, TOKEN).await;
    assert_eq!((status, remaining), (429, Some(0)));
    // A new window.
    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert_eq!(get(&sb, &program, SID, TOKEN).await.0, 200);
    let kinds: Vec<(ReadKind, u16)> = imp.reads().iter().map(|r| (r.kind, r.status)).collect();
    assert_eq!(
        kinds,
        [
            (ReadKind::Submission, 200),
            (ReadKind::Program, 200),
            (ReadKind::Actions, 200),
            (ReadKind::Actions, 429),
            (ReadKind::Program, 200),
        ]
    );
    sb.shutdown().await;
}
