//! The operators' pages on the admin listener (`/admin/...`): log in with
//! an operator token (cookie session, CSRF, lockout shared with the admin
//! API, audited under the token's name), every portal's health, dead
//! letters across portals, bulk replay after a dry-run estimate (carried
//! out by a worker running in the test), and the audit log; each page's
//! figures checked against the database.

use axum::http::StatusCode;
use serde_json::json;
use sqlx::Row;

use crate::support::{
    e2e::{PORTAL, portal_doc},
    website::{Answer, OPERATOR_TOKEN, WebEnv},
};

/// Logs in with the test's operator token: the session cookie.
async fn log_in(web: &WebEnv) -> String {
    let a = web
        .post_form("/admin/login", None, &[("token", OPERATOR_TOKEN)])
        .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    assert_eq!(a.location(), "/admin/portals");
    let set = a
        .headers
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict") && set.contains("Path=/"),
        "{set}"
    );
    a.cookie("connector_operator").expect("a session cookie")
}

/// The CSRF token of a page's forms.
fn csrf(page: &Answer) -> String {
    let at = page
        .body
        .find("name=\"csrf\" value=\"")
        .expect("a form with a CSRF token")
        + "name=\"csrf\" value=\"".len();
    page.body[at..]
        .split('"')
        .next()
        .unwrap_or_default()
        .to_owned()
}

fn contact_doc(program: &str) -> serde_json::Value {
    let mut doc = portal_doc(
        json!({ "contacts": { "on_create": true } }),
        json!({ "contacts": crate::support::e2e::seed_contact_mappings() }),
    );
    doc["impact"]["program_id"] = json!(program);
    doc
}

/// One delivered conversion, then two dead letters (impact.com refuses
/// program 9999), all on portal 1001.
async fn seed(web: &WebEnv) -> anyhow::Result<()> {
    let env = &web.env;
    env.apply(contact_doc("1000")).await?;
    let hs = env.sandbox.hubspot();
    hs.create_contact(
        PORTAL,
        [
            ("lifecyclestage", "lead"),
            ("hs_lead_status", "NEW"),
            ("custom_impact_click_id", "ok"),
        ],
    )?;
    env.process(&env.new_events()).await;
    env.apply(contact_doc("9999")).await?;
    for click in ["a", "b"] {
        hs.create_contact(
            PORTAL,
            [
                ("lifecyclestage", "lead"),
                ("hs_lead_status", "NEW"),
                ("custom_impact_click_id", click),
            ],
        )?;
    }
    env.process(&env.new_events()).await;
    Ok(())
}

async fn count(pool: &sqlx::PgPool, sql: &'static str) -> i64 {
    sqlx::query(sql)
        .bind(PORTAL as i64)
        .fetch_one(pool)
        .await
        .map(|r| r.get::<i64, _>(0))
        .expect("count")
}

#[tokio::test]
async fn without_a_session_every_page_sends_to_the_login_and_a_wrong_token_is_refused()
-> anyhow::Result<()> {
    let web = WebEnv::start().await?;
    for path in [
        "/admin/portals",
        "/admin/dead-letters",
        "/admin/audit",
        "/admin/replays/00000000-0000-0000-0000-000000000000",
    ] {
        let a = web.get(path, None).await;
        assert_eq!(a.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(a.location(), "/admin/login", "{path}");
    }
    let a = web
        .get("/admin/portals", Some("connector_operator=forged"))
        .await;
    assert_eq!(a.location(), "/admin/login");
    let page = web.get("/admin/login", None).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("<label for=\"token\">"), "{}", page.body);
    // The bulk replay needs the session too (no cookie: the login page).
    let a = web
        .post_form("/admin/dead-letters/estimate", None, &[])
        .await;
    assert_eq!(a.location(), "/admin/login");
    let wrong = web
        .post_form(
            "/admin/login",
            None,
            &[("token", "not-an-operator-token-0123456789abcdef")],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(
        wrong.body.contains("not an operator token"),
        "{}",
        wrong.body
    );
    assert!(wrong.cookie("connector_operator").is_none());
    // A login posted from another site (or an opaque origin) is refused;
    // from the page itself it is let in.
    let from = |origin: &str| {
        axum::http::Request::post("/admin/login")
            .header("content-type", "application/x-www-form-urlencoded")
            .header("origin", origin)
            .header("host", "127.0.0.1:8091")
            .body(axum::body::Body::from(format!("token={OPERATOR_TOKEN}")))
            .expect("request")
    };
    for origin in ["https://evil.example", "null", "http://127.0.0.1:8092"] {
        assert_eq!(
            web.send(from(origin)).await.status,
            StatusCode::FORBIDDEN,
            "{origin}"
        );
    }
    assert_eq!(
        web.send(from("http://127.0.0.1:8091")).await.status,
        StatusCode::SEE_OTHER
    );
    let page = web.get("/admin/login", None).await;
    assert_eq!(
        page.headers
            .get("referrer-policy")
            .and_then(|v| v.to_str().ok()),
        Some("same-origin")
    );
    assert!(page.headers.contains_key("content-security-policy"));
    web.finish().await;
    Ok(())
}

#[tokio::test]
async fn wrong_tokens_on_the_login_page_lock_out_as_on_the_admin_api() -> anyhow::Result<()> {
    let web = WebEnv::start().await?;
    let mut s = crate::support::website::website_settings(&web.env, "http://connector.test");
    s.admin_auth_max_failures = 3;
    s.admin_auth_lockout_secs = 60;
    let admin = console::admin::router(console::admin::AdminState::from_settings(&s));
    let post = |token: &str| {
        axum::http::Request::post("/admin/login")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(axum::body::Body::from(format!("token={token}")))
            .expect("request")
    };
    for _ in 0..3 {
        let r = tower::ServiceExt::oneshot(admin.clone(), post("guess")).await?;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    // Locked out: even the right token is refused, on the page and the API.
    let r = tower::ServiceExt::oneshot(admin.clone(), post(OPERATOR_TOKEN)).await?;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().contains_key("retry-after"));
    let api = axum::http::Request::get("/admin/api/dead-letters")
        .header("authorization", format!("Bearer {OPERATOR_TOKEN}"))
        .body(axum::body::Body::empty())?;
    let r = tower::ServiceExt::oneshot(admin.clone(), api).await?;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    web.finish().await;
    Ok(())
}

#[tokio::test]
async fn operators_see_portal_health_dead_letters_and_replay_after_an_estimate()
-> anyhow::Result<()> {
    let web = WebEnv::start().await?;
    seed(&web).await?;
    let pool = &web.env.pool;
    let cookie = log_in(&web).await;
    let login_audited = count(
        pool,
        "SELECT count(*) FROM audit_log WHERE action = 'operator.login' AND actor = 'admin:admin' AND $1 > 0",
    )
    .await;
    assert_eq!(login_audited, 1);

    // Portals: the figures are the database's.
    let page = web.get("/admin/portals", Some(&cookie)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let delivered = count(pool, "SELECT count(*) FROM conversions WHERE portal_id = $1 AND status = 'delivered' AND delivered_at > now() - interval '24 hours'").await;
    let failed = count(pool, "SELECT count(*) FROM dead_letters WHERE portal_id = $1 AND created_at > now() - interval '24 hours'").await;
    let open = count(
        pool,
        "SELECT count(*) FROM dead_letters WHERE portal_id = $1 AND state = 'open'",
    )
    .await;
    assert_eq!((delivered, failed, open), (1, 2, 2));
    let row = page
        .body
        .split(&format!("<tr id=\"portal-{PORTAL}\">"))
        .nth(1)
        .and_then(|r| r.split("</tr>").next())
        .expect("portal 1001's row")
        .to_owned();
    assert!(
        row.contains(&format!("<td class=\"delivered\">{delivered}</td>")),
        "{row}"
    );
    assert!(
        row.contains(&format!("<td class=\"failed\">{failed}</td>")),
        "{row}"
    );
    assert!(row.contains(&format!(">{open}</a>")), "{row}");
    assert!(row.contains("badge-active"), "{row}");
    let last: chrono::DateTime<chrono::Utc> =
        sqlx::query("SELECT max(processed_at) FROM webhook_events WHERE portal_id = $1")
            .bind(PORTAL as i64)
            .fetch_one(pool)
            .await?
            .get(0);
    assert!(
        row.contains(&last.format("%Y-%m-%d %H:%M").to_string()),
        "{row}"
    );

    // Dead letters across portals, filtered; the read is audited.
    let page = web
        .get(
            &format!("/admin/dead-letters?portal={PORTAL}&reason_class=permanent"),
            Some(&cookie),
        )
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let ids: Vec<i64> = sqlx::query(
        "SELECT id FROM dead_letters WHERE portal_id = $1 AND state = 'open' ORDER BY id",
    )
    .bind(PORTAL as i64)
    .fetch_all(pool)
    .await?
    .iter()
    .map(|r| r.get(0))
    .collect();
    for id in &ids {
        assert!(
            page.body.contains(&format!("<tr id=\"dl-{id}\">")),
            "{}",
            page.body
        );
    }
    assert!(
        page.body.contains("2 dead letters, 2 open"),
        "{}",
        page.body
    );
    let other = web
        .get("/admin/dead-letters?portal=1002", Some(&cookie))
        .await;
    assert!(
        other.body.contains("No dead letter matches"),
        "{}",
        other.body
    );
    let bad = web.get("/admin/dead-letters?portal=x", Some(&cookie)).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let audited = count(pool, "SELECT count(*) FROM audit_log WHERE action = 'dead_letter.list' AND actor = 'admin:admin' AND portal_id = $1").await;
    assert!(audited >= 1);

    // Bulk replay: CSRF first.
    let token = csrf(&page);
    let filter = [("portal", "1001"), ("reason_class", "permanent")];
    let no_csrf = web
        .post_form("/admin/dead-letters/estimate", Some(&cookie), &filter)
        .await;
    assert_eq!(no_csrf.status, StatusCode::FORBIDDEN);
    let mut forged = vec![("csrf", "forged")];
    forged.extend(filter);
    let a = web
        .post_form("/admin/dead-letters/estimate", Some(&cookie), &forged)
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert_eq!(
        count(pool, "SELECT count(*) FROM replay_requests WHERE $1 > 0").await,
        0
    );

    // The dry run: queued, a progress bar that refreshes itself.
    let mut fields = vec![("csrf", token.as_str())];
    fields.extend(filter);
    let a = web
        .post_form("/admin/dead-letters/estimate", Some(&cookie), &fields)
        .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    let at = a.location();
    let dry_id: uuid::Uuid = at.trim_start_matches("/admin/replays/").parse()?;
    let dry = shared::db::replays::get(pool, dry_id)
        .await?
        .expect("recorded");
    assert!(dry.mode.dry_run);
    assert_eq!(dry.dead_letter_ids, ids);
    assert_eq!(dry.actor, "admin:admin");
    let page = web.get(&at, Some(&cookie)).await;
    assert!(
        page.body.contains("http-equiv=\"refresh\""),
        "{}",
        page.body
    );
    assert!(
        page.body.contains(&format!(
            "<progress id=\"progress\" max=\"{}\" value=\"0\">",
            ids.len()
        )),
        "{}",
        page.body
    );
    assert!(!page.body.contains("id=\"confirm\""));
    let json = web
        .get(&format!("{at}/progress"), Some(&cookie))
        .await
        .json();
    assert_eq!(json["total"], 2);
    assert_eq!(json["finished"], false);

    web.carry_out_replays().await?;
    let page = web.get(&at, Some(&cookie)).await;
    assert!(
        !page.body.contains("http-equiv=\"refresh\""),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains("2 letters: 2 conversions would be sent, 0 still fail"),
        "{}",
        page.body
    );
    assert!(page.body.contains("value=\"2\">100%"), "{}", page.body);
    // Nothing was sent by the dry run.
    assert_eq!(
        open,
        count(
            pool,
            "SELECT count(*) FROM dead_letters WHERE portal_id = $1 AND state = 'open'"
        )
        .await
    );

    // Confirm: CSRF again, then the real replay of the same dead letters.
    let confirm = format!("{at}/confirm");
    let a = web
        .post_form(&confirm, Some(&cookie), &[("only_sendable", "1")])
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let a = web
        .post_form(
            &confirm,
            Some(&cookie),
            &[("csrf", &csrf(&page)), ("only_sendable", "1")],
        )
        .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    let real_id: uuid::Uuid = a.location().trim_start_matches("/admin/replays/").parse()?;
    let real = shared::db::replays::get(pool, real_id)
        .await?
        .expect("recorded");
    assert!(!real.mode.dry_run);
    assert_eq!(real.dead_letter_ids, ids);
    web.carry_out_replays().await?;
    let real = shared::db::replays::get(pool, real_id)
        .await?
        .expect("recorded");
    let page = web.get(&a.location(), Some(&cookie)).await;
    let outcomes: Vec<String> = real
        .results
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|r| r["outcome"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(outcomes.len(), 2);
    assert!(
        page.body
            .contains(&format!("2 letters: {}: 2", outcomes[0])),
        "{}",
        page.body
    );

    // The audit log page lists what the database holds, newest first.
    let page = web
        .get("/admin/audit?actor=admin:admin", Some(&cookie))
        .await;
    assert_eq!(page.status, StatusCode::OK);
    let rows: Vec<(i64, String)> = sqlx::query(
        "SELECT id, action FROM audit_log WHERE actor = 'admin:admin' ORDER BY id DESC",
    )
    .fetch_all(pool)
    .await?
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect();
    assert!(rows.iter().any(|(_, a)| a == "replay.request"));
    let mut last_at = 0;
    for (id, action) in &rows {
        let at = page
            .body
            .find(&format!("<tr id=\"audit-{id}\">"))
            .expect("listed");
        assert!(at > last_at, "newest first");
        last_at = at;
        assert!(page.body[at..].contains(&format!("<td class=\"action\">{action}</td>")));
    }

    // Log out: the session is over.
    let page = web.get("/admin/portals", Some(&cookie)).await;
    let a = web
        .post_form("/admin/logout", Some(&cookie), &[("csrf", &csrf(&page))])
        .await;
    assert_eq!(a.location(), "/admin/login");
    assert_eq!(
        web.get("/admin/portals", Some(&cookie)).await.location(),
        "/admin/login"
    );
    web.finish().await;
    Ok(())
}

#[tokio::test]
async fn a_dry_runs_estimate_is_read_from_the_workers_reports() -> anyhow::Result<()> {
    let web = WebEnv::start().await?;
    let pool = &web.env.pool;
    let cookie = log_in(&web).await;
    let mode = shared::broker::ReplayMode {
        dry_run: true,
        ..Default::default()
    };
    let ids: Vec<i64> = (1..=412).collect();
    let id = shared::db::replays::insert(pool, "admin:bob", None, &ids, mode).await?;
    shared::db::replays::start(pool, id).await?;
    for i in 1..=412 {
        let report = if i <= 380 {
            json!({"id": i, "outcome": "dry_run", "detail": "would re-evaluate", "preview": [{"would_send": [["OrderId", "x"]]}]})
        } else {
            json!({"id": i, "outcome": "dry_run", "detail": "would re-evaluate", "preview": [{"error": "missing_required_field", "detail": "ClickId"}]})
        };
        shared::db::replays::push_result(pool, id, &report).await?;
        if i == 206 {
            let page = web
                .get(&format!("/admin/replays/{id}"), Some(&cookie))
                .await;
            assert!(
                page.body
                    .contains("<progress id=\"progress\" max=\"412\" value=\"206\">50%</progress>"),
                "{}",
                page.body
            );
            assert!(page.body.contains("206 not estimated yet"), "{}", page.body);
        }
    }
    shared::db::replays::finish(pool, id, None).await?;
    let page = web
        .get(&format!("/admin/replays/{id}"), Some(&cookie))
        .await;
    assert!(
        page.body.contains(
            "412 letters: 380 conversions would be sent, 32 still fail (missing_required_field: 32)"
        ),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("Only the 380 that would be sent"),
        "{}",
        page.body
    );
    web.finish().await;
    Ok(())
}

#[tokio::test]
async fn behind_https_the_operators_cookie_is_secure_with_the_host_prefix() -> anyhow::Result<()> {
    let web = WebEnv::start().await?;
    let mut s = crate::support::website::website_settings(&web.env, "http://connector.test");
    s.admin_public_url = Some("HTTPS://ops.connector.test".into());
    let admin = console::admin::router(console::admin::AdminState::from_settings(&s));
    let login = axum::http::Request::post("/admin/login")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(axum::body::Body::from(format!("token={OPERATOR_TOKEN}")))?;
    let r = tower::ServiceExt::oneshot(admin.clone(), login).await?;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let set = r
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(set.starts_with("__Host-connector_operator="), "{set}");
    assert!(
        set.contains("; Secure") && set.contains("Path=/") && !set.contains("Domain"),
        "{set}"
    );
    let cookie = set.split(';').next().unwrap_or_default().to_owned();
    let page = axum::http::Request::get("/admin/portals")
        .header("cookie", &cookie)
        .body(axum::body::Body::empty())?;
    let r = tower::ServiceExt::oneshot(admin.clone(), page).await?;
    assert_eq!(r.status(), StatusCode::OK);
    // The unprefixed name opens nothing there.
    let plain = axum::http::Request::get("/admin/portals")
        .header("cookie", cookie.replace("__Host-", ""))
        .body(axum::body::Body::empty())?;
    let r = tower::ServiceExt::oneshot(admin, plain).await?;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    web.finish().await;
    Ok(())
}
