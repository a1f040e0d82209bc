//! The dashboard, Activity's search and export, a conversion's page and a
//! dead letter's page: each page's figures and facts checked against the
//! database (not just rendered), "send again" behind its confirmation, and
//! other portals' rows refused.

use crate::support::website::{Login, WebEnv};
use crate::website_routes::{add_seed_contact_mappings, configure_settings};
use axum::http::StatusCode;
use worker::MessageOutcome;

const P1: u64 = 1001;
const P2: u64 = 1002;

async fn setup(w: &WebEnv, login: &Login) {
    configure_settings(w, login).await;
    let a = w
        .submit(
            login,
            "/triggers/active",
            &[("object_type", "contacts"), ("active", "true")],
        )
        .await;
    assert!(a.body.contains("Event triggers saved"), "{}", a.body);
    add_seed_contact_mappings(w, login).await;
}

fn contact(w: &WebEnv, portal: u64, props: &[(&str, &str)]) -> u64 {
    w.env
        .sandbox
        .hubspot()
        .create_contact(portal, props.iter().copied())
        .expect("contact")
}

/// The text between `<... id="{id}">` and the next `<`.
fn text_of(body: &str, id: &str) -> String {
    let marker = format!("id=\"{id}\">");
    let start = body.find(&marker).map(|i| i + marker.len());
    start
        .map(|s| body[s..].split('<').next().unwrap_or_default().to_owned())
        .unwrap_or_default()
}

/// `text` as the templates escape it.
fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#x27;")
        .replace('/', "&#x2f;")
}

/// The conversion ids Activity lists, in order.
fn listed(body: &str) -> Vec<i64> {
    body.split("<tr data-id=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next()?.parse().ok())
        .collect()
}

#[tokio::test]
async fn every_page_shows_what_the_database_holds() -> anyhow::Result<()> {
    let w = WebEnv::start().await?;
    let s = w.install(P1).await?;
    setup(&w, &s).await;
    let pool = &w.env.pool;
    // Three leads delivered; one contact without a lifecycle stage cannot
    // be mapped (no EventTypeCode): dead-lettered.
    let mut ids = Vec::new();
    for click in ["story-a", "story-b", "story-c"] {
        ids.push(contact(
            &w,
            P1,
            &[
                ("lifecyclestage", "lead"),
                ("hs_lead_status", "NEW"),
                ("custom_impact_click_id", click),
                ("city", "Lyon"),
            ],
        ));
    }
    contact(&w, P1, &[("hs_lead_status", "NEW"), ("city", "Nice")]);
    w.env.worker.portals.clear().await;
    match w.env.process(&w.env.new_events()).await {
        MessageOutcome::Done(_) => {}
        other => panic!("{other:?}"),
    }

    // The dashboard: its figures are the database's.
    let d = w.get("/dashboard", Some(&s.cookie)).await;
    assert_eq!(d.status, StatusCode::OK, "{}", d.body);
    let delivered: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM conversions WHERE portal_id = $1 AND status = 'delivered'
           AND outcome IS DISTINCT FROM 'rejected'",
    )
    .bind(P1 as i64)
    .fetch_one(pool)
    .await?;
    assert_eq!(delivered, 3);
    assert_eq!(text_of(&d.body, "week-delivered"), delivered.to_string());
    let open: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM dead_letters WHERE portal_id = $1 AND state = 'open'",
    )
    .bind(P1 as i64)
    .fetch_one(pool)
    .await?;
    assert_eq!(open, 1);
    assert_eq!(text_of(&d.body, "open-dead-letters"), "1");
    let creds: String =
        sqlx::query_scalar("SELECT credentials_status FROM portals WHERE portal_id = $1")
            .bind(P1 as i64)
            .fetch_one(pool)
            .await?;
    assert_eq!(text_of(&d.body, "credentials-status"), creds);
    assert_eq!(creds, "ok", "a delivery proved the credentials");
    // Each hour's bar carries the database's counts.
    let hours: Vec<(String, i64)> = sqlx::query_as(
        "SELECT to_char(date_trunc('hour', delivered_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:00'),
                count(*) FROM conversions WHERE portal_id = $1 AND status = 'delivered' GROUP BY 1",
    )
    .bind(P1 as i64)
    .fetch_all(pool)
    .await?;
    for (hour, n) in hours {
        assert!(
            d.body
                .contains(&format!("<title>{hour} UTC: {n} delivered, 0 rejected,")),
            "{hour}: {n}\n{}",
            d.body
        );
    }
    // And each day of the table under it.
    let days: Vec<(String, i64)> = sqlx::query_as(
        "SELECT to_char(delivered_at AT TIME ZONE 'UTC', 'YYYY-MM-DD'),
                count(*) FROM conversions WHERE portal_id = $1 AND status = 'delivered' GROUP BY 1",
    )
    .bind(P1 as i64)
    .fetch_all(pool)
    .await?;
    for (day, n) in days {
        assert!(
            d.body.contains(&format!(
                "<tr data-day=\"{day}\"><td>{day}</td><td class=\"delivered\">{n}</td>"
            )),
            "{day}: {n}"
        );
    }
    // Events per subscription type, as recorded.
    let by_type: Vec<(String, i64)> = sqlx::query_as(
        "SELECT subscription_type, count(*) FROM webhook_events WHERE portal_id = $1 GROUP BY 1",
    )
    .bind(P1 as i64)
    .fetch_all(pool)
    .await?;
    assert!(!by_type.is_empty());
    for (ty, n) in by_type {
        let row = d
            .body
            .split(&format!("<tr data-type=\"{ty}\">"))
            .nth(1)
            .unwrap_or_default();
        assert!(
            row.contains(&format!("class=\"count\">{n}</td>")),
            "{ty}: {n}\n{}",
            d.body
        );
    }
    assert!(
        d.body.contains("<svg class=\"chart\""),
        "the chart is server-rendered"
    );
    assert!(!d.body.contains("<script>"), "no inline script");

    // Activity: newest first, as in the database; search by ClickId,
    // HubSpot record id and OrderId.
    let all: Vec<(i64, i64, String)> = sqlx::query_as(
        "SELECT id, object_id, order_id FROM conversions WHERE portal_id = $1 ORDER BY id DESC",
    )
    .bind(P1 as i64)
    .fetch_all(pool)
    .await?;
    let act = w.get("/activity", Some(&s.cookie)).await;
    assert_eq!(act.status, StatusCode::OK);
    assert_eq!(
        listed(&act.body),
        all.iter().map(|r| r.0).collect::<Vec<_>>()
    );
    assert!(
        act.body.contains("<time datetime=\""),
        "times for the script"
    );
    let (b_id, b_object, b_order) = sqlx::query_as::<_, (i64, i64, String)>(
        "SELECT id, object_id, order_id FROM conversions
         WHERE portal_id = $1 AND payload::jsonb @> '[[\"ClickId\",\"story-b\"]]'",
    )
    .bind(P1 as i64)
    .fetch_one(pool)
    .await?;
    for q in ["story-b".to_owned(), b_object.to_string(), b_order.clone()] {
        let r = w.get(&format!("/activity?q={q}"), Some(&s.cookie)).await;
        assert_eq!(listed(&r.body), [b_id], "q={q}");
    }
    // Filters.
    let r = w
        .get(
            "/activity?status=failed&object_type=contacts",
            Some(&s.cookie),
        )
        .await;
    assert!(listed(&r.body).is_empty(), "nothing failed");
    assert!(r.body.contains("No conversion matches."));
    let r = w
        .get("/activity?outcome=queued&from=2000-01-01", Some(&s.cookie))
        .await;
    assert_eq!(listed(&r.body).len(), 3);
    let r = w.get("/activity?to=2000-01-01", Some(&s.cookie)).await;
    assert!(listed(&r.body).is_empty(), "all recorded after 2000");
    let r = w.get("/activity?status=bogus", Some(&s.cookie)).await;
    assert!(
        r.body.contains("bogus&quot; is not one of pending"),
        "{}",
        r.body
    );
    // Keyset: below the newest id, the others.
    let r = w
        .get(&format!("/activity?before={}", all[0].0), Some(&s.cookie))
        .await;
    assert_eq!(
        listed(&r.body),
        all[1..].iter().map(|r| r.0).collect::<Vec<_>>()
    );
    assert!(r.body.contains("id=\"newest\""));
    // CSV export of the filtered view.
    let csv = w.get("/activity.csv", Some(&s.cookie)).await;
    assert_eq!(csv.status, StatusCode::OK);
    let lines: Vec<&str> = csv.body.lines().collect();
    assert!(lines[0].starts_with("id,recorded_at,"));
    assert_eq!(lines.len(), all.len() + 1, "{}", csv.body);
    for (id, _, order) in &all {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(&format!("{id},")) && l.contains(order.as_str())),
            "{id}"
        );
    }
    let csv = w.get("/activity.csv?q=story-b", Some(&s.cookie)).await;
    let lines: Vec<&str> = csv.body.lines().collect();
    assert_eq!(lines.len(), 2, "{}", csv.body);
    assert!(lines[1].contains(",story-b,delivered,"), "{}", lines[1]);

    // A conversion's page: its story as stored.
    let page = w
        .get(&format!("/conversions/{b_id}"), Some(&s.cookie))
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let (queued_uri, payload): (String, serde_json::Value) =
        sqlx::query_as("SELECT queued_uri, payload FROM conversions WHERE id = $1")
            .bind(b_id)
            .fetch_one(pool)
            .await?;
    assert!(page.body.contains(&esc(&queued_uri)), "QueuedUri");
    let params: Vec<(String, String)> = serde_json::from_value(payload)?;
    for (k, v) in &params {
        assert!(
            page.body.contains(&format!("{}={}\n", esc(k), esc(v))),
            "exact parameter {k}={v}"
        );
    }
    let (occurred, attempt_number): (i64, Option<i64>) = sqlx::query_as(
        "SELECT occurred_at, (event->>'attemptNumber')::bigint FROM webhook_events
         WHERE conversion_id = $1",
    )
    .bind(b_id)
    .fetch_one(pool)
    .await?;
    assert!(
        page.body
            .contains(&format!("<code class=\"ms\">{occurred}</code>"))
    );
    assert!(page.body.contains(&format!(
        "class=\"attempt-number\">{}</td>",
        attempt_number.unwrap_or_default()
    )));
    let attempts: Vec<(Option<i16>, i32, String)> = sqlx::query_as(
        "SELECT http_status, duration_ms, result FROM conversion_attempts WHERE conversion_id = $1",
    )
    .bind(b_id)
    .fetch_all(pool)
    .await?;
    assert_eq!(attempts.len(), 1, "one POST");
    assert_eq!(
        (attempts[0].0, attempts[0].2.as_str()),
        (Some(200), "queued")
    );
    assert!(
        page.body
            .contains(&format!("class=\"duration\">{} ms</td>", attempts[0].1))
    );
    // Fields with their sources; the record as fetched (used properties).
    // The sources are stored once per portal and configuration, not in
    // each conversion's row.
    let (fetched, stored, kept, shared): (serde_json::Value, serde_json::Value, i64, i64) =
        sqlx::query_as(
            "SELECT fetched_with_sources(fetched, sources_id), fetched,
                 (SELECT count(*) FROM mapping_sources),
                 (SELECT count(DISTINCT sources_id) FROM conversions WHERE sources_id IS NOT NULL)
             FROM conversions WHERE id = $1",
        )
        .bind(b_id)
        .fetch_one(pool)
        .await?;
    assert_eq!(fetched["sources"]["ClickId"], "custom_impact_click_id");
    assert!(stored.get("sources").is_none(), "{stored}");
    assert_eq!((kept, shared), (1, 1), "one configuration, one stored copy");
    assert!(
        page.body.contains("custom_impact_click_id"),
        "sources shown"
    );
    assert_eq!(fetched["object"]["city"], "Lyon");
    assert!(
        fetched["object"].get("hs_analytics_source").is_none(),
        "only the properties used are kept: {fetched}"
    );
    assert!(page.body.contains("<code>custom_impact_click_id</code>"));
    assert!(page.body.contains("Program ID (Settings)"));
    assert!(
        page.body
            .contains("<code>city</code></td><td data-label=\"value\">Lyon</td>")
    );

    // Send again: a confirmation first, CSRF, then a forced resend.
    let form = w
        .get(&format!("/conversions/{b_id}/send-again"), Some(&s.cookie))
        .await;
    assert!(
        form.body.contains("This may credit the sale twice."),
        "{}",
        form.body
    );
    let path = format!("/conversions/{b_id}/send-again");
    let unconfirmed = w.submit(&s, &path, &[]).await;
    assert_eq!(unconfirmed.status, StatusCode::UNPROCESSABLE_ENTITY);
    let forged = w
        .submit(
            &Login {
                cookie: s.cookie.clone(),
                csrf: "forged".into(),
            },
            &path,
            &[("confirm", "yes")],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let sent = w.submit(&s, &path, &[("confirm", "yes")]).await;
    assert!(sent.body.contains("Sending again"), "{}", sent.body);
    let requests = w.carry_out_replays().await?;
    assert_eq!(requests[0].status, "done", "{requests:?}");
    assert_eq!(
        w.env
            .submitted("ClickId")
            .iter()
            .filter(|c| *c == "story-b")
            .count(),
        2,
        "sent twice"
    );
    let resends: Vec<bool> = sqlx::query_scalar(
        "SELECT resend FROM conversion_attempts WHERE conversion_id = $1 ORDER BY at",
    )
    .bind(b_id)
    .fetch_all(pool)
    .await?;
    assert_eq!(resends, [false, true]);
    let page = w
        .get(&format!("/conversions/{b_id}"), Some(&s.cookie))
        .await;
    assert!(page.body.contains("(sent again)"), "{}", page.body);
    // A conversion that is not delivered cannot be "sent again".
    assert_eq!(
        w.submit(&s, "/conversions/999999/send-again", &[("confirm", "yes")])
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    // The dead letter's page: its reason and event, with Replay.
    let (letter, reason): (i64, String) = sqlx::query_as(
        "SELECT id, reason FROM dead_letters WHERE portal_id = $1 AND reason <> 'resend_requested'",
    )
    .bind(P1 as i64)
    .fetch_one(pool)
    .await?;
    let dl = w
        .get(&format!("/dead-letters/{letter}"), Some(&s.cookie))
        .await;
    assert_eq!(dl.status, StatusCode::OK, "{}", dl.body);
    assert!(dl.body.contains(&reason), "{}", dl.body);
    assert!(dl.body.contains("id=\"replay\""), "Replay offered");
    assert!(dl.body.contains("<code>contact.creation</code>"));
    assert!(dl.body.contains("Nice"), "the record as fetched");

    // Another portal sees none of it; no session, no page.
    let s2 = w.install(P2).await?;
    for path in [
        format!("/conversions/{b_id}"),
        format!("/dead-letters/{letter}"),
    ] {
        assert_eq!(
            w.get(&path, Some(&s2.cookie)).await.status,
            StatusCode::NOT_FOUND,
            "{path}"
        );
        assert!(w.get(&path, None).await.location().ends_with("/login"));
    }
    let other = w.get("/activity.csv", Some(&s2.cookie)).await;
    assert_eq!(other.body.lines().count(), 1, "{}", other.body);
    assert_eq!(
        w.submit(&s2, &path, &[("confirm", "yes")]).await.status,
        StatusCode::NOT_FOUND
    );
    w.finish().await;
    Ok(())
}
