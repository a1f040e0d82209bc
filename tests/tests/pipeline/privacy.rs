//! Privacy: `contact.privacyDeletion` (and `contact.deletion` when
//! configured, and `worker privacy erase`) leaves no personal value of the
//! contact anywhere in the database, while deduplication keeps working;
//! logs never carry personal data.

use std::{
    io::Write,
    sync::{Mutex, OnceLock},
    time::Duration,
};

use crate::support::e2e::{PORTAL, WorkerEnv, eventually, seed_deal_mappings, spawn_worker};
use sandbox::{ObjectType, WebhookEvent};
use serde_json::json;
use sha1::Digest as _;
use sqlx::{PgPool, Row};
use worker::{EventResult, MessageMeta, MessageOutcome};

const EMAIL: &str = "Janelle.Quixotica@Example.com";
const FIRST: &str = "Janelle";
const LAST: &str = "Quixotica";
const RENAMED: &str = "Janettina";
const PHONE: &str = "+1-555-0199-4242";
const CLICK: &str = "CLKjq9Z7xPrivacy";
const CITY: &str = "Springfieldia";

/// Every personal value of the contact, and what impact.com received of
/// its e-mail (SHA-1 of the trimmed, lower-cased address) and its SHA-256.
fn personal_values() -> Vec<String> {
    let norm = EMAIL.to_lowercase();
    vec![
        EMAIL.into(),
        norm.clone(),
        hex::encode(sha1::Sha1::digest(norm.as_bytes())),
        hex::encode(sha2::Sha256::digest(norm.as_bytes())),
        FIRST.into(),
        LAST.into(),
        RENAMED.into(),
        PHONE.into(),
        CLICK.into(),
        CITY.into(),
    ]
}

/// Every (table, column, value) where a personal value is found: EVERY
/// column of EVERY table of the test's database, as text.
async fn scan(pool: &PgPool) -> anyhow::Result<Vec<(String, String, String)>> {
    let columns = sqlx::query(
        "SELECT table_name::text, column_name::text FROM information_schema.columns
         WHERE table_schema = 'public' ORDER BY table_name, ordinal_position",
    )
    .fetch_all(pool)
    .await?;
    assert!(columns.len() > 50, "the schema's columns are listed");
    let mut hits = Vec::new();
    for c in columns {
        let (table, column): (String, String) = (c.get(0), c.get(1));
        for v in personal_values() {
            let sql = format!(
                "SELECT count(*) FROM \"{table}\" WHERE \"{column}\"::text ILIKE '%' || $1 || '%'"
            );
            let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                .bind(&v)
                .fetch_one(pool)
                .await?;
            if n > 0 {
                hits.push((table.clone(), column.clone(), v));
            }
        }
    }
    Ok(hits)
}

fn done(outcome: MessageOutcome) -> Vec<EventResult> {
    match outcome {
        MessageOutcome::Done(r) => r,
        other => panic!("expected Done, got {other:?}"),
    }
}

/// A portal converting contacts (personal fields mapped) and deals, and a
/// contact whose values end up everywhere: a dead letter (mapping
/// incomplete at creation, fetched object stored), a delivered conversion,
/// property-change events, an operator's discard reason in the audit log,
/// and a deal attributed to the contact. Returns (env, contact, deal,
/// a change event kept aside to arrive late).
async fn populated(
    erase_on_deletion: bool,
) -> anyhow::Result<(WorkerEnv, u64, u64, Vec<WebhookEvent>)> {
    let mut env = WorkerEnv::start().await?;
    env.settings.privacy_erase_on_deletion = erase_on_deletion;
    env.worker = worker::Worker::new(&env.settings, env.pool.clone())?;
    env.apply(json!({
        "triggers": {
            "contacts": { "on_create": true, "on_change": ["hs_lead_status", "firstname"] },
            "deals": { "on_change": ["dealstage"] }
        },
        "mappings": {
            "contacts": [
                { "from": "lifecyclestage", "to": "EventTypeCode" },
                { "from": "hs_object_id", "to": "CustomerId" },
                { "from": "contact_[lead_status]_id", "to": "OrderId" },
                { "from": "lastmodifieddate", "to": "EventDate" },
                { "from": "email", "to": "CustomerEmail" },
                { "from": "firstname", "to": "Text1" },
                { "from": "lastname", "to": "Text2" },
                { "from": "phone", "to": "Text4" },
                { "from": "custom_impact_click_id", "to": "ClickId" },
                { "from": "city", "to": "CustomerCity" }
            ],
            "deals": seed_deal_mappings()
        }
    }))
    .await?;
    let hs = env.sandbox.hubspot();
    let contact = hs.create_contact(
        PORTAL,
        [
            ("email", EMAIL),
            ("firstname", FIRST),
            ("lastname", LAST),
            ("phone", PHONE),
            ("custom_impact_click_id", CLICK),
            ("city", CITY),
            ("lifecyclestage", "lead"),
        ],
    )?;
    // No lead status yet: the OrderId is incomplete → a dead letter.
    let r = done(env.process(&env.new_events()).await);
    assert!(
        matches!(&r[0], EventResult::Failed(f) if f.reason == "mapping_incomplete"),
        "{r:?}"
    );
    hs.set_property(
        PORTAL,
        ObjectType::Contacts,
        contact,
        "hs_lead_status",
        "NEW",
    )?;
    let r = done(env.process(&env.new_events()).await);
    assert!(matches!(r[0], EventResult::Delivered { .. }), "{r:?}");
    hs.set_property(PORTAL, ObjectType::Contacts, contact, "firstname", RENAMED)?;
    let r = done(env.process(&env.new_events()).await);
    assert!(
        matches!(r[0], EventResult::AlreadyDelivered { .. }),
        "{r:?}"
    );
    // A change that will arrive only after the erasure (no ordering guarantee).
    hs.set_property(PORTAL, ObjectType::Contacts, contact, "firstname", FIRST)?;
    let late = env.new_events();

    let letter: i64 = sqlx::query_scalar("SELECT id FROM dead_letters WHERE object_id = $1")
        .bind(i64::try_from(contact)?)
        .fetch_one(&env.pool)
        .await?;
    worker::dlq::ops::discard(
        &env.pool,
        shared::db::dead_letters::DeadLetterId(letter),
        "cli:alice",
        &format!("test contact {EMAIL}, {FIRST} {LAST}"),
    )
    .await?;

    let deal = hs.create_deal(
        PORTAL,
        [("amount", "250.00"), ("deal_currency_code", "USD")],
        vec![],
        Some(contact),
    )?;
    env.new_events();
    hs.set_property(PORTAL, ObjectType::Deals, deal, "dealstage", "closedwon")?;
    let r = done(env.process(&env.new_events()).await);
    assert!(matches!(r[0], EventResult::Delivered { .. }), "{r:?}");

    let before = scan(&env.pool).await?;
    for table in ["conversions", "webhook_events", "dead_letters", "audit_log"] {
        assert!(
            before.iter().any(|(t, _, _)| t == table),
            "{table} holds personal data first: {before:?}"
        );
    }
    Ok((env, contact, deal, late))
}

/// (order_id, status, payload) of a conversion of `object_type`.
async fn conversion(
    pool: &PgPool,
    object_type: &str,
) -> anyhow::Result<(String, String, serde_json::Value)> {
    let row =
        sqlx::query("SELECT order_id, status, payload FROM conversions WHERE object_type = $1")
            .bind(object_type)
            .fetch_one(pool)
            .await?;
    Ok((row.get(0), row.get(1), row.get(2)))
}

fn param<'a>(payload: &'a serde_json::Value, name: &str) -> Option<&'a str> {
    payload
        .as_array()?
        .iter()
        .find(|p| p[0] == name)
        .and_then(|p| p[1].as_str())
}

#[tokio::test]
async fn privacy_deletion_leaves_no_personal_value_anywhere_in_the_database() -> anyhow::Result<()>
{
    let (env, contact, deal, late) = populated(false).await?;
    let (order_id, _, _) = conversion(&env.pool, "contacts").await?;
    let deal_before = conversion(&env.pool, "deals").await?;

    env.sandbox
        .hubspot()
        .privacy_delete_contact(PORTAL, contact)?;
    let events = env.new_events();
    assert_eq!(events[0].subscription_type, "contact.privacyDeletion");
    assert_eq!(
        done(env.process(&events).await),
        [EventResult::Skipped("privacy_erased")]
    );
    // The change that arrives late is skipped, stored without its value.
    assert_eq!(
        done(env.process(&late).await),
        [EventResult::Skipped("contact_erased")]
    );

    let hits = scan(&env.pool).await?;
    assert!(hits.is_empty(), "personal values left: {hits:?}");

    // What deduplication and the audit need stays: ids, event type, OrderId
    // (built from ids here), status, and the non-personal fields.
    let (kept_order, status, payload) = conversion(&env.pool, "contacts").await?;
    assert_eq!(
        (kept_order.as_str(), status.as_str()),
        (order_id.as_str(), "delivered")
    );
    assert_eq!(param(&payload, "CampaignId"), Some("1000"));
    assert_eq!(
        param(&payload, "CustomerId"),
        Some(contact.to_string().as_str())
    );
    assert_eq!(param(&payload, "Text1"), Some("[erased]"));
    assert_eq!(param(&payload, "CustomerEmail"), Some("[erased]"));
    // The deal's conversion (attributed to the contact by id) carried no
    // personal value of it: unchanged.
    assert_eq!(conversion(&env.pool, "deals").await?, deal_before);
    assert_eq!(deal_before.0, format!("{deal}_closedwon"));
    // The HubSpot notification repeated is recognised as a duplicate; the
    // delivered conversion is never sent again.
    assert_eq!(done(env.process(&events).await), [EventResult::Duplicate]);
    assert_eq!(env.sandbox.impact().by_order_id(&order_id).len(), 1);

    // The erasure is recorded, without personal data.
    let (trigger, counts): (String, serde_json::Value) = sqlx::query_as(
        "SELECT trigger, counts FROM privacy_erasures WHERE portal_id = $1 AND contact_id = $2",
    )
    .bind(i64::try_from(PORTAL)?)
    .bind(i64::try_from(contact)?)
    .fetch_one(&env.pool)
    .await?;
    assert_eq!(trigger, "privacy_deletion");
    assert_eq!(counts["conversions"], 1);
    assert!(counts["webhook_events"].as_u64() >= Some(3), "{counts}");
    assert_eq!(counts["dead_letters"], 1);
    assert_eq!(counts["audit_log"], 1);
    let events_status: Vec<(String, String)> = sqlx::query_as(
        "SELECT status, coalesce(reason, '') FROM webhook_events WHERE subscription_type LIKE 'contact.%' ORDER BY id",
    )
    .fetch_all(&env.pool)
    .await?;
    assert!(
        events_status.contains(&("erased".into(), "privacy_deletion".into())),
        "{events_status:?}"
    );
    assert!(
        events_status.contains(&("skipped".into(), "contact_erased".into())),
        "{events_status:?}"
    );
    env.finish().await;
    Ok(())
}

#[tokio::test]
async fn contact_deletion_erases_only_when_the_setting_says_so() -> anyhow::Result<()> {
    // Without the setting: an ordinary deletion is not an erasure request.
    let (env, contact, _, _) = populated(false).await?;
    env.sandbox
        .hubspot()
        .delete_object(PORTAL, ObjectType::Contacts, contact)?;
    let r = done(env.process(&env.new_events()).await);
    assert_eq!(r, [EventResult::Ignored("unsupported_action")]);
    assert!(!scan(&env.pool).await?.is_empty(), "nothing erased");
    env.finish().await;

    // With CONNECTOR_PRIVACY_ERASE_ON_DELETION: erased like a privacy deletion.
    let (env, contact, _, _) = populated(true).await?;
    env.sandbox
        .hubspot()
        .delete_object(PORTAL, ObjectType::Contacts, contact)?;
    let r = done(env.process(&env.new_events()).await);
    assert_eq!(r, [EventResult::Skipped("privacy_erased")]);
    let hits = scan(&env.pool).await?;
    assert!(hits.is_empty(), "personal values left: {hits:?}");
    let trigger: String = sqlx::query_scalar("SELECT trigger FROM privacy_erasures")
        .fetch_one(&env.pool)
        .await?;
    assert_eq!(trigger, "deletion");
    env.finish().await;
    Ok(())
}

#[tokio::test]
async fn the_erase_command_is_idempotent_and_prints_what_it_erased() -> anyhow::Result<()> {
    let (env, contact, _, late) = populated(false).await?;
    use clap::Parser as _;
    let contact_arg = contact.to_string();
    let cli = worker::cli::Cli::try_parse_from([
        "worker",
        "privacy",
        "erase",
        "--portal",
        "1001",
        "--contact",
        &contact_arg,
    ])?;
    let Some(worker::cli::Command::Privacy(cmd)) = cli.command else {
        panic!("parsed as privacy");
    };
    let mut out = Vec::new();
    worker::cli::records::privacy(&env.settings, cmd, &mut out).await?;
    let text = String::from_utf8(out)?;
    assert!(
        text.contains(&format!("contact {contact} of portal 1001 erased")),
        "{text}"
    );
    assert!(text.contains("conversions: 1"), "{text}");
    assert!(text.contains("dead_letters: 1"), "{text}");
    let hits = scan(&env.pool).await?;
    assert!(hits.is_empty(), "personal values left: {hits:?}");

    // Again: nothing left to erase.
    let mut out = Vec::new();
    let cmd = worker::cli::records::PrivacyCommand::Erase {
        portal: 1001,
        contact: i64::try_from(contact)?,
    };
    worker::cli::records::privacy(&env.settings, cmd, &mut out).await?;
    let text = String::from_utf8(out)?;
    for line in [
        "conversions: 0",
        "webhook_events: 0",
        "dead_letters: 0",
        "audit_log: 0",
    ] {
        assert!(text.contains(line), "{text}");
    }
    let (passes, actor): (i32, String) =
        sqlx::query_as("SELECT passes, actor FROM privacy_erasures")
            .fetch_one(&env.pool)
            .await?;
    assert_eq!(passes, 2);
    assert!(actor.starts_with("cli:"), "{actor}");
    // A late event of the erased contact brings nothing back.
    assert_eq!(
        done(env.process(&late).await),
        [EventResult::Skipped("contact_erased")]
    );
    assert!(scan(&env.pool).await?.is_empty());

    // Bad input is a clear error.
    let cmd = worker::cli::records::PrivacyCommand::Erase {
        portal: 1001,
        contact: 0,
    };
    let err = worker::cli::records::privacy(&env.settings, cmd, &mut Vec::new())
        .await
        .expect_err("contact 0");
    assert!(err.to_string().contains("--contact"), "{err}");
    env.finish().await;
    Ok(())
}

#[tokio::test]
async fn operators_erase_through_the_admin_api() -> anyhow::Result<()> {
    use tower::ServiceExt as _;
    let (env, contact, _, _) = populated(false).await?;
    let mut s = env.settings.clone();
    // A named operator token: the erasure is recorded under its name.
    s.admin_tokens = Some(secrecy::SecretString::from(
        "alice:op-token-of-alice-0123456789abcdef",
    ));
    let app = console::admin::router(console::admin::AdminState::from_settings(&s));
    let post = |body: serde_json::Value| {
        let app = app.clone();
        async move {
            let req = axum::http::Request::post("/admin/api/privacy/erase")
                .header("authorization", "Bearer op-token-of-alice-0123456789abcdef")
                .header("content-type", "application/json")
                // Only what the caller says: ignored.
                .header("x-operator", "mallory")
                .body(axum::body::Body::from(body.to_string()))?;
            let resp = app.oneshot(req).await?;
            let status = resp.status();
            let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX).await?;
            anyhow::Ok((status, serde_json::from_slice::<serde_json::Value>(&bytes)?))
        }
    };
    let (status, body) = post(json!({ "portal": 1001, "contact": contact })).await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["outcome"], "erased");
    assert_eq!(body["erased"]["conversions"], 1);
    assert!(scan(&env.pool).await?.is_empty());
    let (status, body) = post(json!({ "portal": 1001, "contact": contact })).await?;
    assert_eq!(
        (status.as_u16(), &body["erased"]["conversions"]),
        (200, &json!(0))
    );
    let (status, body) = post(json!({ "portal": 1001, "contact": -4 })).await?;
    assert_eq!(status, 400, "{body}");
    let actor: String = sqlx::query_scalar("SELECT actor FROM privacy_erasures")
        .fetch_one(&env.pool)
        .await?;
    assert_eq!(actor, "admin:alice");
    env.finish().await;
    Ok(())
}

/// The logs of this test binary, captured at debug level for our crates.
fn captured() -> &'static Mutex<Vec<u8>> {
    static LOGS: OnceLock<&'static Mutex<Vec<u8>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs: &'static Mutex<Vec<u8>> = Box::leak(Box::new(Mutex::new(Vec::new())));
        struct Sink(&'static Mutex<Vec<u8>>);
        impl Write for Sink {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter("info,worker=trace,shared=trace,ingest=trace,tests=info")
            .with_ansi(false)
            .with_writer(move || Sink(logs))
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("the first subscriber");
        logs
    })
}

#[tokio::test]
async fn logs_of_a_full_run_carry_no_personal_data() -> anyhow::Result<()> {
    let logs = captured();
    let (env, contact, _, late) = populated(false).await?;
    // The rest through a running worker: queue, poller (a rejection), erasure.
    let (order_id, _, _) = conversion(&env.pool, "contacts").await?;
    env.sandbox
        .impact()
        .set_outcome(&order_id, "Contract Error", "CONTRACT_NOT_FOUND");
    let mut settings = env.settings.clone();
    settings.outcomes_poll_interval_secs = 1;
    // Credited conversions are found among the listed actions; the
    // rejected one is read a second after delivery, under a scaled-down
    // rate window so that the poller's pace does not hold the read back.
    settings.outcomes_grace_secs = 1;
    env.sandbox
        .impact()
        .set_rate_window(Duration::from_secs(20));
    let running = spawn_worker(&env, settings);
    env.sandbox
        .hubspot()
        .privacy_delete_contact(PORTAL, contact)?;
    let mut events = env.new_events();
    events.extend(late);
    env.publish(&events).await?;
    eventually(Duration::from_secs(30), "erasure and outcomes", || async {
        let erased: i64 = sqlx::query_scalar("SELECT count(*) FROM privacy_erasures")
            .fetch_one(&env.pool)
            .await?;
        let open: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM conversions WHERE status = 'delivered' AND outcome IS NULL",
        )
        .fetch_one(&env.pool)
        .await?;
        let late_done: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM webhook_events WHERE reason = 'contact_erased'",
        )
        .fetch_one(&env.pool)
        .await?;
        Ok(erased == 1 && open == 0 && late_done == 1)
    })
    .await?;
    running.stop().await?;
    // The erasure ran and the rejection was logged, so logging was on.
    let text =
        String::from_utf8_lossy(&logs.lock().unwrap_or_else(|e| e.into_inner())).into_owned();
    assert!(text.contains("contact's personal data erased"), "{text}");
    assert!(text.contains("impact.com rejected a submission"), "{text}");
    let lower = text.to_lowercase();
    for v in personal_values() {
        assert!(
            !lower.contains(&v.to_lowercase()),
            "{v:?} in the logs:\n{text}"
        );
    }
    assert!(scan(&env.pool).await?.is_empty());
    // Unused here: the single-step path is covered above.
    let _ = MessageMeta::default();
    env.finish().await;
    Ok(())
}

#[tokio::test]
async fn the_fake_hubspot_emits_privacy_deletions_from_its_control_api() -> anyhow::Result<()> {
    let sandbox = sandbox::Sandbox::start(sandbox::SandboxConfig::default()).await?;
    let hs = sandbox.hubspot();
    let contact = hs.create_contact(PORTAL, [("email", EMAIL)])?;
    let http = reqwest::Client::new();
    let r = http
        .post(format!(
            "{}/_sandbox/portals/{PORTAL}/objects/contacts/{contact}/privacy-deletion",
            sandbox.hubspot_url()
        ))
        .send()
        .await?;
    assert_eq!(r.status(), 204);
    let last = hs.emitted_events().pop().expect("an event");
    assert_eq!(last.subscription_type, "contact.privacyDeletion");
    assert_eq!((last.object_id, last.portal_id), (contact, PORTAL));
    assert_eq!(last.property_value, None);
    // The record and its values are gone.
    let r = http
        .get(format!(
            "{}/crm/v3/objects/contacts/{contact}?properties=email",
            sandbox.hubspot_url()
        ))
        .bearer_auth(crate::support::e2e::TOKEN)
        .send()
        .await?;
    assert_eq!(r.status(), 404);
    let stored = hs
        .object(PORTAL, ObjectType::Contacts, contact)
        .expect("kept archived");
    assert!(stored.properties.is_empty());
    Ok(())
}
