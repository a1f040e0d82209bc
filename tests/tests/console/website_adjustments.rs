//! Reversal and modification rules on the website (Event Triggers page) and
//! in the JSON API, and adjustments in Activity, against the sandbox and a
//! fresh database (no socket: `oneshot`).

use crate::support::{
    e2e::seed_deal_mappings,
    website::{Auth, OPERATOR_TOKEN, WebEnv},
};
use axum::http::{Method, StatusCode};
use sandbox::ObjectType;
use serde_json::json;
use worker::{EventResult, MessageOutcome};

const P1: u64 = 1001;

fn done(outcome: MessageOutcome) -> Vec<EventResult> {
    match outcome {
        MessageOutcome::Done(r) => r,
        other => panic!("expected Done, got {other:?}"),
    }
}

#[tokio::test]
async fn rules_are_edited_next_to_triggers_and_adjustments_show_in_activity() -> anyhow::Result<()>
{
    let w = WebEnv::start().await?;
    let s = w.install(P1).await?;
    let base = format!("/api/v1/portals/{P1}");

    let ok = w
        .api(
            Method::PUT,
            &format!("{base}/settings"),
            Auth::Operator(OPERATOR_TOKEN),
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
            Auth::Operator(OPERATOR_TOKEN),
            Some(json!({"deals":{"on_change":[{"property":"dealstage","values":["closedwon"]}]}})),
        )
        .await;
    assert_eq!(t.status, StatusCode::OK, "{}", t.body);
    let m = w
        .api(
            Method::PUT,
            &format!("{base}/mappings"),
            Auth::Operator(OPERATOR_TOKEN),
            Some(json!({ "deals": seed_deal_mappings() })),
        )
        .await;
    assert_eq!(m.status, StatusCode::OK, "{}", m.body);

    // The page shows a form per object type, with the documented defaults.
    let page = w.get("/triggers", Some(&s.cookie)).await;
    assert!(
        page.body.contains("id=\"adjustments-deals\""),
        "{}",
        page.body
    );
    assert!(page.body.contains("placeholder=\"OTHER\""));
    assert!(page.body.contains("placeholder=\"ORDER_UPDATE\""));

    // A malformed line is named; the document's validation names the rest.
    let bad = w
        .submit(
            &s,
            "/triggers/adjustments",
            &[("object_type", "deals"), ("reverse_when", "closedlost")],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.body.contains("Reverse when: write"), "{}", bad.body);
    let bad = w
        .submit(
            &s,
            "/triggers/adjustments",
            &[("object_type", "deals"), ("disposition_code", "not a code")],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        bad.body.contains("adjustments.deals.disposition_code"),
        "{}",
        bad.body
    );

    let saved = w
        .submit(
            &s,
            "/triggers/adjustments",
            &[
                ("object_type", "deals"),
                ("reverse_when", "dealstage: closedlost"),
                ("reverse_on_delete", "on"),
                ("disposition_code", "REJECTED"),
                ("modify_on_change", "amount"),
                ("modify_reason", ""),
                ("amount_from", ""),
                ("action_tracker_ids", "Closed Won: 5001"),
            ],
        )
        .await;
    assert_eq!(saved.status, StatusCode::OK, "{}", saved.body);
    assert!(saved.body.contains("Reversal and modification rules saved"));
    assert!(
        saved.body.contains("dealstage: closedlost"),
        "{}",
        saved.body
    );
    assert!(saved.body.contains("Closed Won: 5001"));

    // The API shows (and replaces) the same rules as the document does.
    let view = w
        .api(Method::GET, &base, Auth::Session(&s), None)
        .await
        .json();
    assert_eq!(
        view["adjustments"]["deals"],
        json!({
            "reverse_when": [{ "property": "dealstage", "values": ["closedlost"] }],
            "reverse_on_delete": true,
            "disposition_code": "REJECTED",
            "modify_on_change": ["amount"],
            "action_tracker_ids": { "Closed Won": 5001 }
        })
    );
    let refused = w
        .api(
            Method::PUT,
            &format!("{base}/adjustments"),
            Auth::Session(&s),
            Some(json!({ "deals": { "reverse_when": ["dealstage"] } })),
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        refused.body.contains("adjustments.deals.reverse_when[0]"),
        "{}",
        refused.body
    );
    let spec = w
        .api(Method::GET, "/api/v1/openapi.json", Auth::None, None)
        .await;
    assert!(spec.json()["paths"]["/api/v1/portals/{portal}/adjustments"].is_object());

    // Won, then lost, while impact.com does not know tracker 5001 yet: the
    // refused reversal is a dead letter in Activity, replayed from there.
    let hs = w.env.sandbox.hubspot();
    let contact = hs.create_contact(P1, [("email", "a@example.com")])?;
    let deal = hs.create_deal(
        P1,
        [("amount", "100"), ("deal_currency_code", "USD")],
        vec![],
        Some(contact),
    )?;
    w.env.new_events();
    w.env.worker.portals.clear().await;
    hs.set_property(P1, ObjectType::Deals, deal, "dealstage", "closedwon")?;
    hs.set_property(P1, ObjectType::Deals, deal, "dealstage", "closedlost")?;
    let results = done(w.env.process(&w.env.new_events()).await);
    assert!(
        matches!(results[0], EventResult::Delivered { .. }),
        "{results:?}"
    );
    assert!(
        matches!(&results[1], EventResult::Failed(f) if f.reason == "impact_rejected"),
        "{results:?}"
    );
    let act = w.get("/activity", Some(&s.cookie)).await;
    assert!(
        act.body.contains("permanent: impact_rejected"),
        "{}",
        act.body
    );
    let letter: i64 =
        sqlx::query_scalar("SELECT id FROM dead_letters WHERE adjustment_id IS NOT NULL")
            .fetch_one(&w.env.pool)
            .await?;
    w.env.sandbox.impact().define_event_type("Closed Won", 5001);
    let replayed = w
        .submit(&s, "/activity/replay", &[("id", &letter.to_string())])
        .await;
    assert!(
        replayed.body.contains("Replay requested"),
        "{}",
        replayed.body
    );
    assert!(replayed.body.contains("queued"), "{}", replayed.body);
    let requests = w.carry_out_replays().await?;
    assert_eq!(requests[0].status, "done");
    assert_eq!(
        requests[0].results[0]["outcome"], "delivered",
        "{requests:?}"
    );
    assert_eq!(w.env.sandbox.impact().reversals().len(), 1);
    let act = w.get("/activity", Some(&s.cookie)).await;
    assert!(
        act.body.contains("<strong>delivered</strong>"),
        "{}",
        act.body
    );
    assert!(act.body.contains("id=\"adjustments\""), "{}", act.body);
    assert!(act.body.contains("dealstage=closedlost"), "{}", act.body);
    assert!(act.body.contains(&format!("{deal}_closedwon")));
    let api = w
        .api(
            Method::GET,
            &format!("{base}/activity"),
            Auth::Session(&s),
            None,
        )
        .await
        .json();
    assert_eq!(api["adjustments"][0]["kind"], "reversal");
    assert_eq!(api["adjustments"][0]["status"], "delivered");
    w.finish().await;
    Ok(())
}
