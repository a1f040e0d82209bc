//! Route tests of the connector website and its JSON API: every page and
//! API call, the OAuth install, CSRF and cross-portal refusals, against the
//! sandbox and a fresh database (no socket: `oneshot`).

use crate::support::website::{Auth, Login, OPERATOR_TOKEN, WebEnv};
use axum::http::{Method, StatusCode};
use domain::events::PortalId;
use serde_json::json;
use worker::{EventResult, MessageOutcome};

const P1: u64 = 1001;
const P2: u64 = 1002;

/// The seed guide's impact.com settings, saved on the Settings page.
pub(crate) async fn configure_settings(w: &WebEnv, login: &Login) {
    let a = w
        .submit(
            login,
            "/settings",
            &[
                ("account_sid", "IRsandbox"),
                ("auth_token", "sandbox-token"),
                ("program_id", "1000"),
            ],
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert!(a.body.contains("Settings saved"), "{}", a.body);
}

/// The seed guide's contact mappings, added one "Add mapping" at a time.
pub(crate) async fn add_seed_contact_mappings(w: &WebEnv, login: &Login) {
    for (from, to) in [
        ("lifecyclestage", "EventTypeCode"),
        ("hs_object_id", "CustomerId"),
        ("contact_[lead_status]_id", "OrderId"),
        ("lastmodifieddate", "EventDate"),
        ("city", "CustomerCity"),
        ("custom_impact_click_id", "ClickId"),
    ] {
        let a = w
            .submit(
                login,
                "/mappings/add",
                &[("object_type", "contacts"), ("from", from), ("to", to)],
            )
            .await;
        assert_eq!(a.status, StatusCode::OK, "{from} → {to}: {}", a.body);
    }
}

fn new_contact(w: &WebEnv, portal: u64, click: &str) -> u64 {
    w.env
        .sandbox
        .hubspot()
        .create_contact(
            portal,
            [
                ("lifecyclestage", "lead"),
                ("hs_lead_status", "NEW"),
                ("custom_impact_click_id", click),
                ("city", "Lyon"),
            ],
        )
        .expect("contact")
}

#[tokio::test]
async fn install_through_hubspot_opens_a_session_with_tokens_stored_encrypted() -> anyhow::Result<()>
{
    let w = WebEnv::start().await?;
    let login = w.get("/login", None).await;
    assert_eq!(login.status, StatusCode::OK);
    assert!(login.body.contains("Click here to login through HubSpot"));
    assert!(w.get("/", None).await.location().ends_with("/login"));
    assert!(
        w.get("/settings", None)
            .await
            .location()
            .ends_with("/login")
    );

    let start = w.get("/oauth/start", None).await;
    assert!(start.status.is_redirection());
    let to = start.location();
    assert!(
        to.starts_with(&format!("{}/oauth/authorize?", w.env.sandbox.hubspot_url())),
        "{to}"
    );
    assert!(to.contains("client_id=sandbox-client-id"));
    assert!(to.contains("redirect_uri=http%3A%2F%2Fconnector.test%2Foauth%2Fcallback"));
    assert!(to.contains("state="));
    let set = start
        .headers
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Lax"),
        "{set}"
    );

    let s = w.install(P1).await?;
    assert!(!s.csrf.is_empty());
    let row: (String, String, Vec<u8>) = sqlx::query_as(
        "SELECT status, hubspot_auth_kind, hubspot_access_token FROM portals WHERE portal_id = $1",
    )
    .bind(P1 as i64)
    .fetch_one(&w.env.pool)
    .await?;
    assert_eq!((row.0.as_str(), row.1.as_str()), ("active", "oauth"));
    assert!(
        !String::from_utf8_lossy(&row.2).contains("access"),
        "stored encrypted"
    );
    let page = w.get("/settings", Some(&s.cookie)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Account SID"));
    assert!(
        w.get("/", Some(&s.cookie))
            .await
            .location()
            .ends_with("/dashboard")
    );
    w.finish().await;
    Ok(())
}

#[tokio::test]
async fn a_callback_with_a_wrong_or_missing_state_is_refused() -> anyhow::Result<()> {
    let w = WebEnv::start().await?;
    let code =
        w.env
            .sandbox
            .hubspot()
            .authorize(P1, "http://connector.test/oauth/callback", "x")?;
    let a = w
        .get(
            &format!("/oauth/callback?code={code}&state=forged"),
            Some("connector_oauth_state=real"),
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.body.contains("state mismatch"));
    let b = w
        .get(&format!("/oauth/callback?code={code}&state=forged"), None)
        .await;
    assert_eq!(b.status, StatusCode::BAD_REQUEST);
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM portals")
        .fetch_one(&w.env.pool)
        .await?;
    assert_eq!(n, 0);
    w.finish().await;
    Ok(())
}

#[tokio::test]
async fn the_seed_guide_through_the_pages_ends_in_activity() -> anyhow::Result<()> {
    let w = WebEnv::start().await?;
    let s = w.install(P1).await?;

    // Settings: wrong credentials get a clear message; the token is write-only.
    let bad = w
        .submit(
            &s,
            "/settings",
            &[
                ("account_sid", "IRsandbox"),
                ("auth_token", "wrong"),
                ("program_id", "1000"),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.body.contains("impact.com refused"), "{}", bad.body);
    let before = w.get("/triggers", Some(&s.cookie)).await;
    assert!(before.body.contains("Save the impact.com Settings first"));
    configure_settings(&w, &s).await;
    let page = w.get("/settings", Some(&s.cookie)).await;
    assert!(!page.body.contains("sandbox-token"));
    assert!(page.body.contains("leave empty to keep"));
    let keep = w
        .submit(
            &s,
            "/settings",
            &[
                ("account_sid", "IRsandbox"),
                ("auth_token", ""),
                ("program_id", "1000"),
            ],
        )
        .await;
    assert_eq!(keep.status, StatusCode::OK, "{}", keep.body);

    // Triggers: the portal's real properties, OR explained.
    let t = w.get("/triggers", Some(&s.cookie)).await;
    assert_eq!(t.status, StatusCode::OK);
    assert!(
        t.body.contains("value=\"lifecyclestage\""),
        "properties listed"
    );
    assert!(t.body.contains("<code>OR</code>"));
    let a = w
        .submit(
            &s,
            "/triggers/active",
            &[("object_type", "contacts"), ("active", "true")],
        )
        .await;
    assert!(a.body.contains("Event triggers saved"), "{}", a.body);
    let a = w
        .submit(
            &s,
            "/triggers/add",
            &[("object_type", "deals"), ("property", "dealstage")],
        )
        .await;
    assert!(a.body.contains("Trigger added"), "{}", a.body);
    let a = w
        .submit(
            &s,
            "/triggers/add",
            &[("object_type", "deals"), ("property", "dealname")],
        )
        .await;
    assert!(a.body.contains("dealname"));
    let a = w
        .submit(
            &s,
            "/triggers/remove",
            &[("object_type", "deals"), ("property", "dealname")],
        )
        .await;
    assert!(a.body.contains("Trigger removed"));
    let a = w
        .submit(
            &s,
            "/triggers/add",
            &[("object_type", "deals"), ("property", "no such!")],
        )
        .await;
    assert_eq!(
        a.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validated like portal apply"
    );

    // Mappings: unmapped required fields named until mapped.
    let m = w.get("/mappings", Some(&s.cookie)).await;
    assert!(m.body.contains("Required impact.com fields not mapped yet"));
    assert!(m.body.contains("line_item{i}.hs_sku"));
    assert!(m.body.contains("ItemSku{i}"));
    add_seed_contact_mappings(&w, &s).await;
    let m = w.get("/mappings", Some(&s.cookie)).await;
    assert!(
        m.body.contains("id=\"unmapped-contacts\">All required"),
        "{}",
        m.body
    );
    let r = w
        .submit(&s, "/mappings/refresh", &[("object_type", "contacts")])
        .await;
    assert!(r.body.contains("properties reloaded"));
    let bad = w
        .submit(
            &s,
            "/mappings/add",
            &[
                ("object_type", "contacts"),
                ("from", "city"),
                ("to", "NotAField"),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    w.submit(
        &s,
        "/mappings/add",
        &[
            ("object_type", "contacts"),
            ("from", "zip"),
            ("to", "Text2"),
        ],
    )
    .await;
    let rm = w
        .submit(
            &s,
            "/mappings/remove",
            &[("object_type", "contacts"), ("index", "6")],
        )
        .await;
    assert!(rm.body.contains("Mapping removed"), "{}", rm.body);

    // Preview: the exact conversion, or what is missing.
    let id = new_contact(&w, P1, "click-preview");
    let p = w
        .submit(
            &s,
            "/preview",
            &[("object_type", "contacts"), ("object_id", &id.to_string())],
        )
        .await;
    assert!(p.body.contains("Would send"), "{}", p.body);
    assert!(p.body.contains("click-preview"));
    let p = w
        .submit(
            &s,
            "/preview",
            &[("object_type", "companies"), ("object_id", "1")],
        )
        .await;
    assert!(
        p.body.contains("Not sendable") || p.body.contains("HubSpot has no"),
        "{}",
        p.body
    );
    assert_eq!(
        w.get("/preview", Some(&s.cookie)).await.status,
        StatusCode::OK
    );

    // A HubSpot change → the worker → Activity.
    w.env.worker.portals.clear().await;
    let results = match w.env.process(&w.env.new_events()).await {
        MessageOutcome::Done(r) => r,
        other => panic!("{other:?}"),
    };
    assert!(
        results
            .iter()
            .any(|r| matches!(r, EventResult::Delivered { .. })),
        "{results:?}"
    );
    let act = w.get("/activity", Some(&s.cookie)).await;
    assert_eq!(act.status, StatusCode::OK);
    assert!(act.body.contains("delivered"));
    assert!(
        act.body.contains("APISubmissions"),
        "QueuedUri shown: {}",
        act.body
    );
    // No dead letter 1 in this portal: said so, nothing replayed.
    let replay = w.submit(&s, "/activity/replay", &[("id", "1")]).await;
    assert!(replay.body.contains("no dead letter 1"), "{}", replay.body);
    assert_eq!(
        w.get("/account", Some(&s.cookie)).await.status,
        StatusCode::OK
    );
    w.finish().await;
    Ok(())
}

#[tokio::test]
async fn every_form_and_api_change_needs_the_csrf_token() -> anyhow::Result<()> {
    let w = WebEnv::start().await?;
    let s = w.install(P1).await?;
    for path in [
        "/settings",
        "/triggers/active",
        "/triggers/add",
        "/triggers/remove",
        "/mappings/add",
        "/mappings/remove",
        "/mappings/refresh",
        "/preview",
        "/activity/replay",
        "/account/delete",
        "/logout",
    ] {
        let none = w
            .post_form(
                path,
                Some(&s.cookie),
                &[("object_type", "contacts"), ("confirm", "delete")],
            )
            .await;
        assert_eq!(none.status, StatusCode::FORBIDDEN, "{path} without token");
        let wrong = w
            .post_form(
                path,
                Some(&s.cookie),
                &[
                    ("csrf", "forged"),
                    ("object_type", "contacts"),
                    ("confirm", "delete"),
                ],
            )
            .await;
        assert_eq!(
            wrong.status,
            StatusCode::FORBIDDEN,
            "{path} with a wrong token"
        );
        let anon = w.post_form(path, None, &[("csrf", &s.csrf)]).await;
        assert!(
            anon.location().ends_with("/login"),
            "{path} without session"
        );
    }
    let api = w
        .api(
            Method::PUT,
            &format!("/api/v1/portals/{P1}/triggers"),
            Auth::SessionNoCsrf(&s),
            Some(json!({})),
        )
        .await;
    assert_eq!(api.status, StatusCode::FORBIDDEN);
    assert_eq!(api.json()["error"], "csrf_failed");
    let ok = w
        .api(
            Method::GET,
            &format!("/api/v1/portals/{P1}"),
            Auth::SessionNoCsrf(&s),
            None,
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK, "reads need no CSRF token");
    assert_eq!(
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM portals")
            .fetch_one(&w.env.pool)
            .await?,
        1,
        "nothing deleted"
    );
    w.finish().await;
    Ok(())
}

#[tokio::test]
async fn a_session_sees_only_its_portal_and_the_operator_sees_all() -> anyhow::Result<()> {
    let w = WebEnv::start().await?;
    let s1 = w.install(P1).await?;
    let s2 = w.install(P2).await?;
    for (m, path, body) in [
        (Method::GET, format!("/api/v1/portals/{P2}"), None),
        (
            Method::PUT,
            format!("/api/v1/portals/{P2}/settings"),
            Some(
                json!({"account_sid":"IRsandbox","auth_token":"sandbox-token","program_id":"1000"}),
            ),
        ),
        (
            Method::PUT,
            format!("/api/v1/portals/{P2}/triggers"),
            Some(json!({})),
        ),
        (
            Method::PUT,
            format!("/api/v1/portals/{P2}/mappings"),
            Some(json!({})),
        ),
        (
            Method::GET,
            format!("/api/v1/portals/{P2}/properties/contacts"),
            None,
        ),
        (
            Method::POST,
            format!("/api/v1/portals/{P2}/preview"),
            Some(json!({"object_type":"contacts","object_id":1})),
        ),
        (Method::GET, format!("/api/v1/portals/{P2}/activity"), None),
        (
            Method::POST,
            format!("/api/v1/portals/{P2}/dead-letters/1/replay"),
            None,
        ),
        (Method::DELETE, format!("/api/v1/portals/{P2}"), None),
    ] {
        let a = w.api(m.clone(), &path, Auth::Session(&s1), body).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{m} {path}: {}", a.body);
    }
    let mine = w
        .api(Method::GET, "/api/v1/portals", Auth::Session(&s1), None)
        .await;
    let ids: Vec<i64> = mine
        .json()
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["portal_id"].as_i64())
        .collect();
    assert_eq!(ids, [P1 as i64]);
    let all = w
        .api(
            Method::GET,
            "/api/v1/portals",
            Auth::Operator(OPERATOR_TOKEN),
            None,
        )
        .await;
    assert_eq!(all.json().as_array().map(Vec::len), Some(2));
    assert_eq!(
        w.api(
            Method::GET,
            &format!("/api/v1/portals/{P1}"),
            Auth::Operator(OPERATOR_TOKEN),
            None
        )
        .await
        .status,
        StatusCode::OK
    );
    assert_eq!(
        w.api(
            Method::GET,
            "/api/v1/portals",
            Auth::Operator("wrong"),
            None
        )
        .await
        .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        w.api(Method::GET, "/api/v1/portals", Auth::None, None)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    // The pages only ever show the session's own portal.
    let p2 = w.get("/settings", Some(&s2.cookie)).await;
    assert!(
        p2.body.contains(&format!("Portal {P2}")) && !p2.body.contains(&format!("Portal {P1}"))
    );
    // A forged cookie is no session.
    let forged = s1.cookie.replacen(&P1.to_string(), &P2.to_string(), 1);
    assert!(
        w.get("/settings", Some(&forged))
            .await
            .location()
            .ends_with("/login")
    );
    w.finish().await;
    Ok(())
}

#[tokio::test]
async fn the_api_covers_every_operation() -> anyhow::Result<()> {
    let w = WebEnv::start().await?;
    let s = w.install(P1).await?;
    let op = Auth::Operator(OPERATOR_TOKEN);
    let spec = w
        .api(Method::GET, "/api/v1/openapi.json", Auth::None, None)
        .await;
    assert_eq!(spec.status, StatusCode::OK);
    assert_eq!(spec.json()["openapi"], "3.0.3");
    let base = format!("/api/v1/portals/{P1}");
    let early = w
        .api(
            Method::PUT,
            &format!("{base}/triggers"),
            Auth::Session(&s),
            Some(json!({})),
        )
        .await;
    assert_eq!(
        early.status,
        StatusCode::CONFLICT,
        "settings first: {}",
        early.body
    );
    let bad = w
        .api(
            Method::PUT,
            &format!("{base}/settings"),
            Auth::Session(&s),
            Some(json!({"account_sid":"IRsandbox","auth_token":"nope","program_id":"1000"})),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    let ok = w
        .api(
            Method::PUT,
            &format!("{base}/settings"),
            Auth::Session(&s),
            Some(
                json!({"account_sid":"IRsandbox","auth_token":"sandbox-token","program_id":"1000"}),
            ),
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    let t = w
        .api(
            Method::PUT,
            &format!("{base}/triggers"),
            op,
            Some(json!({"contacts":{"on_create":true},"deals":{"on_change":["dealstage"]}})),
        )
        .await;
    assert_eq!(t.status, StatusCode::OK, "{}", t.body);
    let bad = w
        .api(
            Method::PUT,
            &format!("{base}/mappings"),
            Auth::Operator(OPERATOR_TOKEN),
            Some(json!({"contacts":[{"from":"city","to":"Nope"}]})),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        !bad.json()["details"]
            .as_array()
            .map(Vec::is_empty)
            .unwrap_or(true)
    );
    let m = w
        .api(
            Method::PUT,
            &format!("{base}/mappings"),
            Auth::Session(&s),
            Some(json!({"contacts": crate::support::e2e::seed_contact_mappings()})),
        )
        .await;
    assert_eq!(m.status, StatusCode::OK, "{}", m.body);
    let view = w
        .api(Method::GET, &base, Auth::Session(&s), None)
        .await
        .json();
    assert_eq!(view["account_sid"], "IRsandbox");
    assert_eq!(view["auth_token_saved"], true);
    assert!(!view.to_string().contains("sandbox-token"));
    assert_eq!(view["unmapped"]["contacts"], json!([]));
    assert_eq!(view["triggers"]["deals"]["on_change"], json!(["dealstage"]));
    let props = w
        .api(
            Method::GET,
            &format!("{base}/properties/contacts?refresh=true"),
            Auth::Session(&s),
            None,
        )
        .await;
    assert!(
        props.json().as_array().is_some_and(|a| a
            .iter()
            .any(|p| p["name"] == "custom_impact_click_id" && p["hubspotDefined"] == false)),
        "{}",
        props.body
    );
    let id = w.env.sandbox.hubspot().create_contact(
        P1,
        [
            ("lifecyclestage", "lead"),
            ("hs_lead_status", "NEW"),
            ("custom_impact_click_id", "api-click"),
        ],
    )?;
    let pv = w
        .api(
            Method::POST,
            &format!("{base}/preview"),
            Auth::Session(&s),
            Some(json!({"object_type":"contacts","object_id":id})),
        )
        .await;
    assert!(pv.body.contains("api-click"), "{}", pv.body);
    let act = w
        .api(
            Method::GET,
            &format!("{base}/activity"),
            Auth::Session(&s),
            None,
        )
        .await;
    assert_eq!(act.status, StatusCode::OK);
    assert!(act.json()["conversions"].is_array() && act.json()["dead_letters"].is_array());
    let rp = w
        .api(
            Method::POST,
            &format!("{base}/dead-letters/1/replay"),
            Auth::Session(&s),
            None,
        )
        .await;
    assert_eq!(rp.status, StatusCode::NOT_FOUND);
    assert_eq!(rp.json()["error"], "not_found");
    let del = w
        .api(Method::DELETE, &base, Auth::Operator(OPERATOR_TOKEN), None)
        .await;
    assert_eq!(del.status, StatusCode::OK);
    assert_eq!(
        w.api(Method::GET, &base, Auth::Operator(OPERATOR_TOKEN), None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    w.finish().await;
    Ok(())
}

#[tokio::test]
async fn an_uninstall_shows_paused_ends_sessions_and_a_reinstall_resumes_with_the_old_settings()
-> anyhow::Result<()> {
    let w = WebEnv::start().await?;
    let s = w.install(P1).await?;
    configure_settings(&w, &s).await;
    add_seed_contact_mappings(&w, &s).await;
    w.env.sandbox.hubspot().uninstall(P1)?;
    sqlx::query("UPDATE portals SET hubspot_token_expires_at = now()")
        .execute(&w.env.pool)
        .await?;
    let r = w
        .submit(&s, "/mappings/refresh", &[("object_type", "contacts")])
        .await;
    assert!(r.body.contains("app was uninstalled"), "{}", r.body);
    assert!(r.body.contains("id=\"paused\""), "{}", r.body);
    // The uninstall ended the portal's sessions: the old cookie opens nothing.
    let page = w.get("/settings", Some(&s.cookie)).await;
    assert!(page.location().ends_with("/login"), "{}", page.status);
    let status: String = sqlx::query_scalar("SELECT status FROM portals")
        .fetch_one(&w.env.pool)
        .await?;
    assert_eq!(status, "uninstalled");

    let again = w.install(P1).await?;
    let page = w.get("/mappings", Some(&again.cookie)).await;
    assert!(!page.body.contains("id=\"paused\""));
    assert!(page.body.contains("custom_impact_click_id"));
    let view = w
        .api(
            Method::GET,
            &format!("/api/v1/portals/{P1}"),
            Auth::Session(&again),
            None,
        )
        .await
        .json();
    assert_eq!(view["status"], "active");
    assert_eq!(view["account_sid"], "IRsandbox");
    w.finish().await;
    Ok(())
}

#[tokio::test]
async fn delete_account_needs_confirmation_then_removes_everything() -> anyhow::Result<()> {
    let w = WebEnv::start().await?;
    let s = w.install(P1).await?;
    configure_settings(&w, &s).await;
    new_contact(&w, P1, "before-delete");
    w.env.worker.portals.clear().await;
    w.env.process(&w.env.new_events()).await;
    let conversions = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM conversions WHERE portal_id = $1")
            .bind(P1 as i64)
            .fetch_one(&w.env.pool)
            .await
    };
    sqlx::query(
        "INSERT INTO conversions (portal_id, event_type, order_id, object_type, object_id, payload)
         VALUES ($1, 'Lead', '1_lead', 'contacts', 1, '[]')",
    )
    .bind(P1 as i64)
    .execute(&w.env.pool)
    .await?;
    assert_eq!(conversions().await?, 1);
    let no = w.submit(&s, "/account/delete", &[("confirm", "")]).await;
    assert_eq!(no.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(no.body.contains("Type delete to confirm"));
    let yes = w
        .submit(&s, "/account/delete", &[("confirm", "delete")])
        .await;
    assert_eq!(yes.status, StatusCode::OK);
    assert!(yes.body.contains("Account deleted"));
    assert!(
        yes.cookie("connector_session")
            .is_some_and(|c| c == "connector_session=")
    );
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM portals")
        .fetch_one(&w.env.pool)
        .await?;
    assert_eq!(n, 0);
    assert!(
        w.get("/settings", Some(&s.cookie))
            .await
            .location()
            .ends_with("/login")
    );
    let events: i64 =
        sqlx::query_scalar("SELECT count(*) FROM webhook_events WHERE portal_id = $1")
            .bind(P1 as i64)
            .fetch_one(&w.env.pool)
            .await?;
    assert_eq!(events, 0);
    assert_eq!(conversions().await?, 0, "conversions go with the account");
    // Processing stops: the worker no longer knows the portal.
    new_contact(&w, P1, "after-delete");
    w.env.worker.portals.invalidate(PortalId(P1)).await;
    match w.env.process(&w.env.new_events()).await {
        MessageOutcome::Done(r) => assert_eq!(r, [EventResult::Skipped("unknown_portal")]),
        other => panic!("{other:?}"),
    }
    let out = w.submit(&s, "/logout", &[]).await;
    assert!(out.location().ends_with("/login"));
    w.finish().await;
    Ok(())
}

#[tokio::test]
async fn without_its_settings_the_website_answers_503_and_webhooks_still_work() {
    use tower::ServiceExt;
    let mut s = shared::config::Settings::defaults();
    s.amqp_url = "amqp://guest:guest@127.0.0.1:1/%2f".into();
    s.hubspot_client_secret = Some(secrecy::SecretString::from("website-routes-secret"));
    let site = console::app(console::AppState::from_settings(&s));
    for path in ["/login", "/settings", "/api/v1/portals"] {
        let r = site
            .clone()
            .oneshot(
                axum::http::Request::get(path)
                    .body(axum::body::Body::empty())
                    .expect("req"),
            )
            .await
            .expect("infallible");
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE, "{path}");
    }
    // Webhooks are ingest's, which has no website at all.
    let hooks = ingest::app(ingest::AppState::from_settings(&s).expect("valid"));
    let hook = hooks
        .oneshot(
            axum::http::Request::post("/webhooks/hubspot")
                .body(axum::body::Body::from("[]"))
                .expect("req"),
        )
        .await
        .expect("infallible");
    assert_eq!(
        hook.status(),
        StatusCode::UNAUTHORIZED,
        "webhooks unaffected"
    );
}

#[tokio::test]
async fn a_private_apps_webhook_secret_is_set_and_removed_never_shown() -> anyhow::Result<()> {
    let w = WebEnv::start().await?;
    // A private-app portal, configured as code (`worker portal apply`).
    w.env
        .apply(crate::support::e2e::portal_doc(json!({}), json!({})))
        .await?;
    let op = || Auth::Operator(OPERATOR_TOKEN);
    let path = format!("/api/v1/portals/{P1}/webhook-secret");
    let spec = w
        .api(Method::GET, "/api/v1/openapi.json", Auth::None, None)
        .await;
    assert!(spec.json()["paths"]["/api/v1/portals/{portal}/webhook-secret"]["put"].is_object());
    assert_eq!(view_of(&w).await.json()["webhook_secret_set"], false);

    let set = w
        .api(
            Method::PUT,
            &path,
            op(),
            Some(json!({"webhook_secret": " private-app-secret-value "})),
        )
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    assert_eq!(set.json()["webhook_secret_set"], true);
    let shown = view_of(&w).await;
    assert_eq!(shown.json()["webhook_secret_set"], true);
    assert!(
        !shown.body.contains("private-app-secret-value"),
        "{}",
        shown.body
    );
    // Stored sealed, bound to the portal; the audit log names the change only.
    let sealed: Vec<u8> =
        sqlx::query_scalar("SELECT hubspot_webhook_secret FROM portals WHERE portal_id = $1")
            .bind(P1 as i64)
            .fetch_one(&w.env.pool)
            .await?;
    let cipher = shared::crypto::SecretCipher::from_base64(crate::support::e2e::KEY)?;
    let opened = shared::db::webhook_secrets::open(&cipher, PortalId(P1), &sealed)?;
    assert_eq!(
        secrecy::ExposeSecret::expose_secret(&opened),
        "private-app-secret-value",
        "trimmed"
    );
    let audit: Vec<String> = sqlx::query_scalar(
        "SELECT action || ' ' || detail::text FROM audit_log WHERE portal_id = $1 ORDER BY id",
    )
    .bind(P1 as i64)
    .fetch_all(&w.env.pool)
    .await?;
    assert!(
        audit
            .iter()
            .any(|a| a.starts_with("portal.webhook_secret.set")),
        "{audit:?}"
    );
    assert!(
        audit.iter().all(|a| !a.contains("private-app-secret")),
        "{audit:?}"
    );
    // Saving the settings (a document round trip) keeps it.
    let settings = w
        .api(
            Method::PUT,
            &format!("/api/v1/portals/{P1}/settings"),
            op(),
            Some(json!({"account_sid":"IRsandbox","program_id":"1000"})),
        )
        .await;
    assert_eq!(settings.status, StatusCode::OK, "{}", settings.body);
    assert_eq!(view_of(&w).await.json()["webhook_secret_set"], true);

    let removed = w.api(Method::DELETE, &path, op(), None).await;
    assert_eq!(removed.status, StatusCode::OK, "{}", removed.body);
    assert_eq!(view_of(&w).await.json()["webhook_secret_set"], false);
    let missing = w
        .api(
            Method::PUT,
            "/api/v1/portals/4040/webhook-secret",
            op(),
            // Strong enough: the portal is what is missing.
            Some(json!({"webhook_secret": "a-private-app-secret-of-no-portal"})),
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND, "{}", missing.body);
    w.env.finish().await;
    Ok(())
}

/// Portal 1001 as the API shows it to the operator.
async fn view_of(w: &WebEnv) -> crate::support::website::Answer {
    w.api(
        Method::GET,
        &format!("/api/v1/portals/{P1}"),
        Auth::Operator(OPERATOR_TOKEN),
        None,
    )
    .await
}
