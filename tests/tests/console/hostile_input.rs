//! The hostile-input catalogue: forged, stale, oversized, malformed and
//! tricky requests against the webhook endpoint (over a real socket, into
//! a real broker) and against the admin and website JSON APIs. Each one
//! gets a clear 4xx with a JSON error, enqueues nothing and changes nothing
//! in the database. Hostile events inside a properly signed array of
//! objects are set aside one by one (ignored, or kept as `invalid` dead
//! letters), never enqueued for the worker.

use std::time::Duration;

use crate::support::{
    harness::{self, TEST_SECRET, now_ms},
    website::{Auth, OPERATOR_TOKEN, WebEnv},
};
use axum::{
    body::Body,
    http::{Method, Request, header},
};
use domain::signature;
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One valid event of portal 1001, with `patch` merged in.
fn event(patch: Value) -> Value {
    let mut e = json!({
        "eventId": 1, "subscriptionId": 2, "portalId": 1001, "appId": 3,
        "occurredAt": now_ms(), "subscriptionType": "contact.creation",
        "attemptNumber": 0, "objectId": 42, "changeSource": "CRM"
    });
    if let (Some(e), Value::Object(p)) = (e.as_object_mut(), patch) {
        e.extend(p);
    }
    e
}

fn body_of(events: Vec<Value>) -> Vec<u8> {
    serde_json::to_vec(&events).expect("serialisable")
}

/// A webhook request: how it is signed and sent.
struct Hook {
    name: &'static str,
    body: Vec<u8>,
    /// Headers as (name, raw bytes); `None`: signed properly (v3, now).
    headers: Option<Vec<(&'static str, Vec<u8>)>>,
    /// Appended to the URL that is requested (not to the signed one).
    path_suffix: &'static str,
    expect: u16,
    code: &'static str,
}

fn v3_headers(url: &str, body: &[u8], ts: u64) -> Vec<(&'static str, Vec<u8>)> {
    let ts = ts.to_string();
    let sig = signature::sign_v3(TEST_SECRET.as_bytes(), "POST", url, body, &ts);
    vec![
        ("x-hubspot-signature-v3", sig.into_bytes()),
        ("x-hubspot-request-timestamp", ts.into_bytes()),
    ]
}

fn webhook_cases(url: &str) -> Vec<Hook> {
    let ok = body_of(vec![event(json!({}))]);
    let now = now_ms();
    let signed = |b: &[u8]| v3_headers(url, b, now);
    let hook = |name, body: Vec<u8>, headers, expect, code| Hook {
        name,
        body,
        headers,
        path_suffix: "",
        expect,
        code,
    };
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000)).into_bytes();
    let thousand = body_of((0..1000).map(|i| event(json!({"eventId": i}))).collect());
    let mut swapped = signed(&ok);
    swapped[0].1 = signed(&body_of(vec![event(json!({"objectId": 43}))]))[0]
        .1
        .clone();
    let mut dup = signed(&ok);
    dup.insert(0, ("x-hubspot-signature-v3", b"AAAA".to_vec()));
    let other_host = v3_headers(&url.replace("127.0.0.1", "evil.example"), &ok, now);
    let other_secret = {
        let ts = now.to_string();
        let sig = signature::sign_v3(b"not-the-secret", "POST", url, &ok, &ts);
        vec![
            ("x-hubspot-signature-v3", sig.into_bytes()),
            ("x-hubspot-request-timestamp", ts.into_bytes()),
        ]
    };
    let raw_signed = |name, b: Vec<u8>| {
        let h = signed(&b);
        hook(name, b, Some(h), 400, "invalid_payload")
    };
    let mut cases = vec![
        hook("no signature at all", ok.clone(), Some(vec![]), 401, "missing_signature"),
        hook("signature with the wrong secret", ok.clone(), Some(other_secret), 401, "invalid_signature"),
        hook("signature of another body (replayed onto this one)", ok.clone(), Some(swapped), 401, "invalid_signature"),
        hook("timestamp 6 minutes old (replay of a captured request)", ok.clone(), Some(v3_headers(url, &ok, now - 360_000)), 401, "stale_timestamp"),
        hook("timestamp 10 minutes in the future", ok.clone(), Some(v3_headers(url, &ok, now + 600_000)), 401, "future_timestamp"),
        hook("timestamp not a number", ok.clone(), Some(vec![("x-hubspot-signature-v3", b"AAAA".to_vec()), ("x-hubspot-request-timestamp", b"yesterday".to_vec())]), 401, "malformed_timestamp"),
        hook("v3 signature without its timestamp", ok.clone(), Some(vec![signed(&ok)[0].clone()]), 401, "incomplete_signature_headers"),
        hook("v1 signature when only v3 is accepted", ok.clone(), Some(vec![("x-hubspot-signature", signature::sign_v1(TEST_SECRET.as_bytes(), &ok).into_bytes()), ("x-hubspot-signature-version", b"v1".to_vec())]), 401, "signature_version_not_accepted"),
        hook("unknown signature version", ok.clone(), Some(vec![("x-hubspot-signature", b"abc".to_vec()), ("x-hubspot-signature-version", b"v9".to_vec())]), 401, "unknown_signature_version"),
        hook("signed for another host (Host header trick)", ok.clone(), Some(other_host), 401, "invalid_signature"),
        hook("two v3 signature headers, the first forged", ok.clone(), Some(dup), 401, "invalid_signature"),
        hook("invalid UTF-8 in the signature header", ok.clone(), Some(vec![("x-hubspot-signature-v3", vec![0xff, 0xfe, 0x41]), ("x-hubspot-request-timestamp", now.to_string().into_bytes())]), 401, "incomplete_signature_headers"),
        raw_signed("invalid UTF-8 body, signed", b"[{\"portalId\":1,\"objectId\":2,\"occurredAt\":3,\"subscriptionType\":\"a.\xff\xfe\"}]".to_vec()),
        raw_signed("deeply nested body (5,000 levels), signed", deep),
        raw_signed("1,000 events in one batch, signed", thousand),
        raw_signed("empty array, signed", b"[]".to_vec()),
        raw_signed("an object instead of an array, signed", serde_json::to_vec(&event(json!({}))).expect("json")),
        raw_signed("not JSON at all, signed", b"<xml>hello</xml>".to_vec()),
        raw_signed("an array of numbers, signed", b"[1,2,3]".to_vec()),
        raw_signed("an event, then a string, signed", format!("[{},\"x\"]", event(json!({}))).into_bytes()),
    ];
    let huge = vec![b'['; 2 * 1024 * 1024];
    let huge_headers = signed(&huge);
    cases.push(hook(
        "2 MiB body (over the 1 MiB limit)",
        huge,
        Some(huge_headers),
        413,
        "body_too_large",
    ));
    let mut query = hook(
        "signed URL without the query the request carries",
        ok.clone(),
        Some(signed(&ok)),
        401,
        "invalid_signature",
    );
    query.path_suffix = "?portal=1002";
    cases.push(query);
    cases
}

/// Signed deliveries of one hostile event each: accepted (HubSpot would
/// otherwise retry, then drop the whole delivery), never enqueued for the
/// worker; kept as an `invalid` dead letter when the pipeline reads its
/// kind, else ignored. (name, event patch, invalid, ignored)
fn set_aside_cases() -> Vec<(&'static str, Value, u64, u64)> {
    vec![
        ("portalId as a string", json!({"portalId": "1001"}), 1, 0),
        ("negative objectId", json!({"objectId": -5}), 1, 0),
        ("occurredAt beyond u64", json!({"occurredAt": 1e30}), 1, 0),
        (
            "SQL in subscriptionType",
            json!({"subscriptionType": "contact.creation'; DROP TABLE portals;--"}),
            0,
            1,
        ),
        (
            "HTML in subscriptionType",
            json!({"subscriptionType": "<script>alert(1)</script>"}),
            0,
            1,
        ),
        (
            "HTML in propertyName",
            json!({"subscriptionType": "contact.propertyChange", "propertyName": "<script>alert(1)</script>", "propertyValue": "x"}),
            1,
            0,
        ),
        (
            "path traversal in propertyName",
            json!({"subscriptionType": "contact.propertyChange", "propertyName": "../../etc/passwd", "propertyValue": "x"}),
            1,
            0,
        ),
        (
            "propertyValue as an object",
            json!({"propertyValue": {"$gt": ""}}),
            1,
            0,
        ),
        (
            "an association change (no objectId)",
            json!({"subscriptionType": "contact.associationChange", "objectId": null, "fromObjectId": 1, "toObjectId": 2}),
            0,
            1,
        ),
    ]
}

#[tokio::test]
async fn hostile_events_in_a_signed_delivery_are_set_aside_never_enqueued() -> anyhow::Result<()> {
    let settings = harness::test_settings();
    let ingest = harness::spawn_ingest(settings.clone()).await?;
    let url = ingest.webhook_url();
    let (conn, ch) = harness::broker_channel().await?;
    let topology = worker::topology(&settings)?;
    topology.declare(&conn).await?;
    let (work, dead) = (topology.work_queue(), topology.dead_queue());
    let client = reqwest::Client::new();
    let mut failures = Vec::new();
    let mut dead_expected = 0;
    for (name, patch, invalid, ignored) in set_aside_cases() {
        let body = body_of(vec![event(patch)]);
        let resp = harness::signed_request(&client, &url, TEST_SECRET, body)
            .send()
            .await?;
        let status = resp.status().as_u16();
        let answer: Value = resp.json().await.unwrap_or(Value::Null);
        dead_expected += invalid;
        let (queued, dead_now) = (
            harness::queue_len(&ch, &work).await?,
            harness::queue_len(&ch, &dead).await?,
        );
        if status != 200
            || answer["events"] != 0
            || answer["invalid"] != invalid
            || answer["ignored"] != ignored
            || queued != 0
            || u64::from(dead_now) != dead_expected
        {
            failures.push(format!(
                "{name}: {status} {answer}, work queue {queued}, dead queue {dead_now} (expected {dead_expected})"
            ));
        }
    }
    // A value nested 3,000 levels deep inside an event: kept aside as sent.
    let deep_in_event = format!(
        r#"[{{"portalId":1,"objectId":2,"occurredAt":3,"subscriptionType":"contact.creation","x":{}1{}}}]"#,
        "[".repeat(3000),
        "]".repeat(3000)
    );
    let resp = harness::signed_request(&client, &url, TEST_SECRET, deep_in_event.into_bytes())
        .send()
        .await?;
    let answer: Value = resp.json().await?;
    if answer["invalid"] != 1 || harness::queue_len(&ch, &work).await? != 0 {
        failures.push(format!("deeply nested value inside an event: {answer}"));
    }
    assert!(
        failures.is_empty(),
        "set-aside cases that failed:\n{}",
        failures.join("\n")
    );
    ingest.stop().await?;
    harness::delete_topology(&ch, &settings).await?;
    Ok(())
}

/// Sends raw bytes to `addr` and returns the status and body of the answer.
async fn raw_http(addr: std::net::SocketAddr, request: &[u8]) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(request).await.expect("write");
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out)).await;
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, text)
}

#[tokio::test]
async fn hostile_webhook_requests_get_a_clear_4xx_and_enqueue_nothing() -> anyhow::Result<()> {
    let settings = harness::test_settings();
    let ingest = harness::spawn_ingest(settings.clone()).await?;
    let url = ingest.webhook_url();
    let (conn, ch) = harness::broker_channel().await?;
    let topology = worker::topology(&settings)?;
    topology.declare(&conn).await?;
    let work = topology.work_queue();
    harness::purge(&ch, &work).await?;
    let client = reqwest::Client::new();
    let cases = webhook_cases(&url);
    let mut failures = Vec::new();
    for case in &cases {
        let mut req = client
            .post(format!("{url}{}", case.path_suffix))
            .header("content-type", "application/json")
            .body(case.body.clone());
        for (k, v) in case.headers.clone().unwrap_or_default() {
            req = req.header(k, reqwest::header::HeaderValue::from_bytes(&v)?);
        }
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        let depth = harness::queue_len(&ch, &work).await?;
        if status != case.expect || body["error"] != case.code || depth != 0 {
            failures.push(format!(
                "{}: {status} {body} (expected {} {}), queue depth {depth}",
                case.name, case.expect, case.code
            ));
        }
        assert!(
            body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{}: a clear message, got {body}",
            case.name
        );
    }

    // Below the HTTP client: tricks a well-behaved client cannot send.
    let host = ingest.addr.to_string();
    let ok = body_of(vec![event(json!({}))]);
    let lying_length = format!(
        "POST /webhooks/hubspot HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: 99999999\r\nConnection: close\r\n\r\n"
    );
    let chunked_huge = {
        let mut r = format!(
            "POST /webhooks/hubspot HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        )
        .into_bytes();
        for _ in 0..40 {
            r.extend_from_slice(format!("{:x}\r\n", 64 * 1024).as_bytes());
            r.extend(std::iter::repeat_n(b'[', 64 * 1024));
            r.extend_from_slice(b"\r\n");
        }
        r.extend_from_slice(b"0\r\n\r\n");
        r
    };
    let smuggle = format!(
        "POST /webhooks/hubspot HTTP/1.1\r\nHost: {host}\r\nContent-Length: {}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\n",
        ok.len()
    );
    let raw_cases: Vec<(&str, Vec<u8>, u16)> = vec![
        (
            "Content-Length of 99,999,999 declared",
            lying_length.into_bytes(),
            413,
        ),
        ("2.5 MiB chunked body without a length", chunked_huge, 413),
        // hyper lets chunked win (RFC 9112) and no smuggled request follows: the
        // empty chunked body carries no signature.
        (
            "Content-Length and Transfer-Encoding together (smuggling)",
            smuggle.into_bytes(),
            401,
        ),
    ];
    for (name, bytes, expect) in raw_cases {
        let (status, text) = raw_http(ingest.addr, &bytes).await;
        let depth = harness::queue_len(&ch, &work).await?;
        if status != expect || depth != 0 {
            failures.push(format!(
                "{name}: {status} (expected {expect}), queue depth {depth}: {text:.200}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "hostile webhook cases that failed:\n{}",
        failures.join("\n")
    );
    assert!(cases.len() >= 21, "the catalogue shrank: {}", cases.len());

    // The control: a proper request is accepted and enqueued, so "nothing
    // enqueued" above is measured, not assumed.
    let resp = harness::signed_request(&client, &url, TEST_SECRET, ok)
        .send()
        .await?;
    assert_eq!(resp.status(), 200);
    assert_eq!(harness::queue_len(&ch, &work).await?, 1);
    ingest.stop().await?;
    harness::delete_topology(&ch, &settings).await?;
    Ok(())
}

/// Every table's rows, as one text: compared before and after each request.
pub(crate) async fn snapshot(pool: &PgPool) -> anyhow::Result<String> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' AND tablename <> '_sqlx_migrations' ORDER BY 1",
    )
    .fetch_all(pool)
    .await?;
    let mut out = String::new();
    for t in tables {
        let rows: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT string_agg(x::text, '\n' ORDER BY x::text) FROM {t} x"
        )))
        .fetch_one(pool)
        .await?;
        out.push_str(&format!("== {t}\n{}\n", rows.unwrap_or_default()));
    }
    Ok(out)
}

#[tokio::test]
async fn hostile_admin_and_api_requests_get_a_clear_4xx_and_change_nothing() -> anyhow::Result<()> {
    let w = WebEnv::start().await?;
    let mine = w.install(1001).await?;
    let theirs = w.install(1002).await?;
    let base = "/api/v1/portals/1001";
    // A session logged out before the snapshot: its cookie is replayed below.
    let gone = w.install(1001).await?;
    let out = w.submit(&gone, "/logout", &[]).await;
    assert!(out.location().ends_with("/login"));
    // Portal 1001 is configured, so that a stale save below would go through.
    let settings =
        json!({"account_sid": "IRsandbox", "auth_token": "sandbox-token", "program_id": "1000"});
    let a = w
        .api(
            Method::PUT,
            &format!("{base}/settings"),
            Auth::Session(&mine),
            Some(settings),
        )
        .await;
    assert!(a.status.is_success(), "{} {}", a.status, a.body);
    // A dead letter of portal 1002, which 1001's session must not reach.
    sqlx::query(
        "INSERT INTO dead_letters (portal_id, object_type, reason_class, reason, payload, attempts) \
         VALUES (1002, 'contacts', 'permanent', 'test', '[]'::jsonb, 1)",
    )
    .execute(&w.env.pool)
    .await
    .ok();
    let before = snapshot(&w.env.pool).await?;
    let op = Auth::Operator(OPERATOR_TOKEN);
    let s = Auth::Session(&mine);
    let long = "x".repeat(20_000);
    let cases: Vec<(&str, Method, String, Auth<'_>, Option<Value>)> = vec![
        (
            "admin list without a token",
            Method::GET,
            "/admin/api/dead-letters".into(),
            Auth::None,
            None,
        ),
        (
            "admin list with a wrong token",
            Method::GET,
            "/admin/api/dead-letters".into(),
            Auth::Operator("operator-token-for-tests-0123456789abcdeg"),
            None,
        ),
        (
            "admin: a session cookie is not an operator token",
            Method::GET,
            "/admin/api/dead-letters".into(),
            Auth::Session(&theirs),
            None,
        ),
        (
            "admin: SQL in the text filter's class",
            Method::GET,
            "/admin/api/dead-letters?reason_class=permanent'%20OR%201=1--".into(),
            Auth::Operator(OPERATOR_TOKEN),
            None,
        ),
        (
            "admin: dead letter id with path traversal",
            Method::GET,
            "/admin/api/dead-letters/..%2F..%2Fetc%2Fpasswd".into(),
            Auth::Operator(OPERATOR_TOKEN),
            None,
        ),
        (
            "admin: dead letter id beyond i64",
            Method::GET,
            "/admin/api/dead-letters/99999999999999999999999".into(),
            Auth::Operator(OPERATOR_TOKEN),
            None,
        ),
        (
            "admin: replay with a portal of the wrong type",
            Method::POST,
            "/admin/api/dead-letters/replay".into(),
            Auth::Operator(OPERATOR_TOKEN),
            Some(json!({"portal": "1001 OR 1=1"})),
        ),
        (
            "admin: discard of an id that does not exist",
            Method::POST,
            "/admin/api/dead-letters/987654321/discard".into(),
            Auth::Operator(OPERATOR_TOKEN),
            Some(json!({"reason": "x"})),
        ),
        (
            "admin: since is not a date",
            Method::GET,
            "/admin/api/dead-letters?since=%3Cscript%3E".into(),
            Auth::Operator(OPERATOR_TOKEN),
            None,
        ),
        (
            "api without a session",
            Method::GET,
            base.into(),
            Auth::None,
            None,
        ),
        (
            "api: a write without the CSRF header",
            Method::PUT,
            format!("{base}/settings"),
            Auth::SessionNoCsrf(&mine),
            Some(json!({"account_sid": "IRsandbox", "auth_token": "stolen", "program_id": "1"})),
        ),
        (
            "api: another portal's document (cross-portal id)",
            Method::GET,
            "/api/v1/portals/1002".into(),
            Auth::Session(&mine),
            None,
        ),
        (
            "api: deleting another portal",
            Method::DELETE,
            "/api/v1/portals/1002".into(),
            Auth::Session(&mine),
            None,
        ),
        (
            "api: changing another portal's triggers",
            Method::PUT,
            "/api/v1/portals/1002/triggers".into(),
            Auth::Session(&mine),
            Some(json!({"contacts": {"on_create": true}})),
        ),
        (
            "api: another portal's activity",
            Method::GET,
            "/api/v1/portals/1002/activity".into(),
            Auth::Session(&mine),
            None,
        ),
        (
            "api: portal id with path traversal",
            Method::GET,
            "/api/v1/portals/..%2F1002".into(),
            Auth::Session(&mine),
            None,
        ),
        (
            "api: portal id that is not a number",
            Method::GET,
            "/api/v1/portals/1001%27%20OR%20%271%27=%271".into(),
            Auth::Session(&mine),
            None,
        ),
        (
            "api: triggers of the wrong type",
            Method::PUT,
            format!("{base}/triggers"),
            Auth::Session(&mine),
            Some(json!({"contacts": {"on_create": "yes please"}})),
        ),
        (
            "api: mapping to an unknown impact.com field (HTML)",
            Method::PUT,
            format!("{base}/mappings"),
            Auth::Session(&mine),
            Some(json!({"contacts": [{"from": "email", "to": "<script>alert(1)</script>"}]})),
        ),
        (
            "api: settings with a 20,000-character program id",
            Method::PUT,
            format!("{base}/settings"),
            Auth::Session(&mine),
            Some(json!({"account_sid": "IRsandbox", "program_id": long})),
        ),
        (
            "api: operator token on a session route with a forged portal",
            Method::PUT,
            "/api/v1/portals/1002/mappings".into(),
            Auth::Operator("nope"),
            Some(json!({"contacts": []})),
        ),
        (
            "api: a webhook secret for an OAuth portal (the public app signs its webhooks)",
            Method::PUT,
            format!("{base}/webhook-secret"),
            Auth::Operator(OPERATOR_TOKEN),
            Some(json!({"webhook_secret": "private-app-secret"})),
        ),
        (
            "api: an empty webhook secret",
            Method::PUT,
            format!("{base}/webhook-secret"),
            Auth::Session(&mine),
            Some(json!({"webhook_secret": "  "})),
        ),
        (
            "api: a webhook secret for another session's portal",
            Method::PUT,
            "/api/v1/portals/1002/webhook-secret".into(),
            Auth::Session(&mine),
            Some(json!({"webhook_secret": "x"})),
        ),
        (
            "api: a webhook secret with an unknown field",
            Method::PUT,
            format!("{base}/webhook-secret"),
            Auth::Session(&mine),
            Some(json!({"webhook_secret": "x", "portal_id": 1002})),
        ),
        (
            "api: a logged-out session's cookie, replayed",
            Method::GET,
            format!("{base}/activity"),
            Auth::Session(&gone),
            None,
        ),
    ];
    let _ = (&op, &s);
    let mut failures = Vec::new();
    let count = cases.len();
    for (name, method, path, auth, body) in cases {
        let a = w.api(method, &path, auth, body).await;
        let after = snapshot(&w.env.pool).await?;
        let j = a.json();
        let clear = j["error"].as_str().is_some_and(|e| !e.is_empty())
            && j["message"].as_str().is_some_and(|m| !m.is_empty());
        if !a.status.is_client_error() || !clear || after != before {
            failures.push(format!(
                "{name}: {} {:.300}{}",
                a.status,
                a.body,
                if after == before {
                    ""
                } else {
                    " (DATABASE CHANGED)"
                }
            ));
        }
    }
    // Requests no JSON client would send.
    let raw: Vec<(&str, Request<Body>)> = vec![
        (
            "api: invalid UTF-8 JSON body",
            Request::put(format!("{base}/settings"))
                .header(header::COOKIE, &mine.cookie)
                .header("x-csrf-token", &mine.csrf)
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(vec![
                    b'{', b'"', 0xff, 0xfe, b'"', b':', b'1', b'}',
                ]))?,
        ),
        (
            "api: deeply nested JSON body",
            Request::put(format!("{base}/triggers"))
                .header(header::COOKIE, &mine.cookie)
                .header("x-csrf-token", &mine.csrf)
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(format!(
                    "{}{}",
                    "[".repeat(10_000),
                    "]".repeat(10_000)
                )))?,
        ),
        (
            "api: a forged session cookie",
            Request::get(base)
                .header(
                    header::COOKIE,
                    "connector_session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                )
                .body(Body::empty())?,
        ),
        (
            "admin: bearer token with invalid UTF-8",
            Request::get("/admin/api/dead-letters")
                .header(
                    header::AUTHORIZATION,
                    header::HeaderValue::from_bytes(b"Bearer \xff\xfe")?,
                )
                .body(Body::empty())?,
        ),
        (
            "api: 2 MiB JSON body",
            Request::put(format!("{base}/mappings"))
                .header(header::COOKIE, &mine.cookie)
                .header("x-csrf-token", &mine.csrf)
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(format!(
                    "{{\"contacts\":\"{}\"}}",
                    "a".repeat(2 * 1024 * 1024)
                )))?,
        ),
    ];
    let put_with = |tag: &str| -> anyhow::Result<Request<Body>> {
        Ok(Request::put(format!("{base}/triggers"))
            .header(header::COOKIE, &mine.cookie)
            .header("x-csrf-token", &mine.csrf)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::IF_MATCH, tag)
            .body(Body::from(
                json!({"contacts": {"on_create": true}}).to_string(),
            ))?)
    };
    let mut raw = raw;
    raw.push((
        "api: a save based on a stale version (If-Match)",
        put_with("\"0\"")?,
    ));
    raw.push((
        "api: an If-Match that is not a version",
        put_with("\"v1; DROP\"")?,
    ));
    let raw_count = raw.len();
    for (name, req) in raw {
        let a = w.send(req).await;
        let after = snapshot(&w.env.pool).await?;
        let j = a.json();
        let clear = j["error"].as_str().is_some_and(|e| !e.is_empty());
        if !a.status.is_client_error() || !clear || after != before {
            failures.push(format!(
                "{name}: {} {:.300}{}",
                a.status,
                a.body,
                if after == before {
                    ""
                } else {
                    " (DATABASE CHANGED)"
                }
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "hostile API cases that failed:\n{}",
        failures.join("\n")
    );
    assert!(count + raw_count >= 25, "the catalogue shrank");
    // The control: the same session can change its own portal, and the
    // snapshot sees it.
    let a = w
        .api(Method::PUT, &format!("{base}/settings"), Auth::Session(&mine), Some(json!({"account_sid": "IRsandbox", "auth_token": "sandbox-token", "program_id": "1000"})))
        .await;
    assert!(a.status.is_success(), "{} {}", a.status, a.body);
    assert_ne!(
        snapshot(&w.env.pool).await?,
        before,
        "a real change shows in the snapshot"
    );
    w.finish().await;
    Ok(())
}
