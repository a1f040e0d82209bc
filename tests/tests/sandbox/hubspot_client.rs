//! The product's HubSpot client against the fake HubSpot where the fake
//! behaves as HubSpot does and a naive client would go wrong: search
//! answers without rate-limit headers, and v4 batch association rows that
//! page on their own.

// In tests a panic is the failure report.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use domain::object_type::ObjectType as Type;
use sandbox::{PortalSeed, Sandbox, SandboxConfig};
use secrecy::SecretString;
use shared::hubspot::{HubSpotClient, ModifiedWindow};

const PORTAL: u64 = 1001;
const TOKEN: &str = "pat-sandbox-1001";

async fn start(per_10s: Option<u32>) -> (Sandbox, HubSpotClient, SecretString) {
    let sb = Sandbox::start(SandboxConfig {
        portals: vec![PortalSeed::sized(PORTAL, 5)],
        rate_limit_per_10s: per_10s,
        ..Default::default()
    })
    .await
    .unwrap();
    let client = HubSpotClient::new(reqwest::Client::new(), &sb.hubspot_url()).unwrap();
    (sb, client, SecretString::from(TOKEN))
}

/// HubSpot's search sends no rate-limit headers: its answer must not make
/// the client take a limited account for unlimited (it would then send a
/// burst that collects 429s).
#[tokio::test(flavor = "multi_thread")]
async fn a_search_answer_leaves_the_rate_budget_as_it_was() {
    let (sb, client, token) = start(Some(3)).await;
    let hs = sb.hubspot();
    let id = hs.objects(PORTAL, sandbox::ObjectType::Contacts)[0].id;
    // One read teaches the client the limit (3 per 10 s).
    client
        .get_object(&token, Type::Contacts, id, &[])
        .await
        .unwrap();
    // The search answer carries no headers, as HubSpot's.
    let window = ModifiedWindow {
        since_ms: 0,
        until_ms: i64::MAX,
        above_id: None,
    };
    let found = client
        .search_modified(&token, Type::Contacts, &window, &[], None)
        .await
        .unwrap();
    assert!(!found.results.is_empty());
    let reads = (0..3).map(|_| client.get_object(&token, Type::Contacts, id, &[]));
    let answers = tokio::time::timeout(Duration::from_secs(30), futures::future::join_all(reads))
        .await
        .unwrap();
    assert!(answers.iter().all(Result::is_ok), "{answers:?}");
    assert_eq!(hs.rate_limited(PORTAL), 0, "no 429 from HubSpot");
    sb.shutdown().await;
}

/// A v4 batch association read pages each row on its own (`paging.next.after`
/// in the row); the client follows every row to its end.
#[tokio::test(flavor = "multi_thread")]
async fn batch_association_rows_are_followed_to_their_end() {
    let (sb, client, token) = start(None).await;
    let hs = sb.hubspot();
    hs.set_association_row_page(3);
    let items = |n: usize| -> Vec<sandbox::Props> {
        (0..n)
            .map(|i| sandbox::props([("hs_sku", format!("SKU-{i}")), ("price", "1.00".into())]))
            .collect()
    };
    let big = hs
        .create_deal(PORTAL, [("dealname", "big")], items(8), None)
        .unwrap();
    let small = hs
        .create_deal(PORTAL, [("dealname", "small")], items(2), None)
        .unwrap();
    let bare = hs
        .create_deal(PORTAL, [("dealname", "bare")], vec![], None)
        .unwrap();
    let got = client
        .batch_associations(&token, Type::Deals, "line_items", &[big, small, bare])
        .await
        .unwrap();
    for (deal, n) in [(big, 8), (small, 2), (bare, 0)] {
        let mut ids: Vec<u64> = got[&deal].iter().map(|a| a.to_object_id).collect();
        ids.sort_unstable();
        let mut want = hs.associated(
            PORTAL,
            sandbox::ObjectType::Deals,
            deal,
            sandbox::ObjectType::LineItems,
        );
        want.sort_unstable();
        assert_eq!(ids, want, "deal {deal}");
        assert_eq!(ids.len(), n);
    }
    sb.shutdown().await;
}

/// The fake's search reaches at most its cap (HubSpot's 10,000; set to 3
/// here) of a query's results: `total` counts them all, a cursor is handed
/// out past the cap, and following it answers 400.
#[tokio::test(flavor = "multi_thread")]
async fn a_search_stops_at_the_result_cap_as_hubspots_does() {
    let (sb, client, token) = start(None).await;
    let hs = sb.hubspot();
    hs.set_search_result_cap(3);
    let window = ModifiedWindow {
        since_ms: 0,
        until_ms: i64::MAX,
        above_id: None,
    };
    let first = client
        .search_modified(&token, Type::Contacts, &window, &[], None)
        .await
        .unwrap();
    let all = hs.objects(PORTAL, sandbox::ObjectType::Contacts).len() as u64;
    assert!(all > 3);
    assert_eq!(first.total, all);
    assert_eq!(first.results.len(), 3);
    let next = first.next.expect("a cursor past the cap");
    let past = client
        .search_modified(&token, Type::Contacts, &window, &[], Some(&next))
        .await
        .unwrap_err();
    assert!(past.to_string().contains("400"), "{past}");
    sb.shutdown().await;
}

/// A merge as HubSpot makes it: a new record (the primary's values win, the
/// merged one's fill the gaps, `hs_merged_object_ids` lists both), both old
/// ids read as it and leave lists and searches, one `contact.merge` event;
/// through the control API as through the handle.
#[tokio::test(flavor = "multi_thread")]
async fn a_merge_makes_a_new_record_that_old_ids_read_as() {
    let (sb, client, token) = start(None).await;
    let hs = sb.hubspot();
    let a = hs
        .create_contact(PORTAL, [("email", "a@example.com"), ("city", "Lyon")])
        .unwrap();
    let b = hs
        .create_contact(PORTAL, [("email", "b@example.com")])
        .unwrap();
    let before = hs.emitted_events().len();
    let http = reqwest::Client::new();
    let resp = http
        .post(format!(
            "{}/_sandbox/portals/{PORTAL}/objects/contacts/merge",
            sb.hubspot_url()
        ))
        .json(&serde_json::json!({"primaryObjectId": b.to_string(), "objectIdToMerge": a.to_string()}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    let c: u64 = body["id"].as_str().unwrap().parse().unwrap();
    assert!(c != a && c != b);
    let props = ["email", "city", "hs_merged_object_ids"].map(String::from);
    for old in [a, b, c] {
        let read = client
            .get_object(&token, Type::Contacts, old, &props)
            .await
            .unwrap();
        assert_eq!(read.id, c.to_string(), "{old} reads as the merged record");
        assert_eq!(read.properties["email"].as_deref(), Some("b@example.com"));
        assert_eq!(read.properties["city"].as_deref(), Some("Lyon"));
        assert_eq!(
            read.properties["hs_merged_object_ids"].as_deref(),
            Some(format!("{a};{b}").as_str())
        );
    }
    let live: Vec<u64> = hs
        .objects(PORTAL, sandbox::ObjectType::Contacts)
        .iter()
        .map(|o| o.id)
        .collect();
    assert!(live.contains(&c) && !live.contains(&a) && !live.contains(&b));
    let events = &hs.emitted_events()[before..];
    assert_eq!(events.len(), 1);
    let wire = serde_json::to_value(&events[0]).unwrap();
    assert_eq!(wire["subscriptionType"], "contact.merge");
    assert_eq!(wire["objectId"], c);
    assert_eq!(wire["primaryObjectId"], b);
    assert_eq!(wire["mergedObjectIds"], serde_json::json!([a]));
    assert_eq!(wire["newObjectId"], c);
    assert_eq!(
        wire["numberOfPropertiesMoved"], 1,
        "city came from the merged record"
    );
    // A merged-away id cannot be merged or restored again.
    assert!(
        hs.merge_objects(PORTAL, sandbox::ObjectType::Contacts, c, a)
            .is_err()
    );
    let restore = http
        .post(format!(
            "{}/_sandbox/portals/{PORTAL}/objects/contacts/{a}/restore",
            sb.hubspot_url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(restore.status(), 400);
    sb.shutdown().await;
}
