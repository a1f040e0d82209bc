//! Saving the impact.com settings checks the Account SID, Auth Token and
//! Program ID together with impact.com (`GET /Advertisers/{SID}/Campaigns/
//! {ProgramId}`): a wrong program or a wrong token is refused with a
//! message naming the part that is wrong, through the website's Settings
//! page and through the JSON API, and nothing is saved.

use axum::http::{Method, StatusCode};
use sandbox::impact::ReadKind;
use serde_json::json;

use crate::support::website::{Auth, WebEnv};

const P1: u64 = 1001;

/// The stored impact.com settings of `portal`: (account SID, program id).
async fn stored(w: &WebEnv, portal: u64) -> anyhow::Result<(Option<String>, Option<String>)> {
    Ok(sqlx::query_as(
        "SELECT impact_account_sid, impact_program_id FROM portals WHERE portal_id = $1",
    )
    .bind(portal as i64)
    .fetch_one(&w.env.pool)
    .await?)
}

#[tokio::test]
async fn the_settings_page_names_a_wrong_program_or_wrong_credentials() -> anyhow::Result<()> {
    let w = WebEnv::start().await?;
    let s = w.install(P1).await?;
    let save = |token: &'static str, program: &'static str| {
        let (w, s) = (&w, &s);
        async move {
            w.submit(
                s,
                "/settings",
                &[
                    ("account_sid", "IRsandbox"),
                    ("auth_token", token),
                    ("program_id", program),
                ],
            )
            .await
        }
    };

    // A program the account does not have: the credentials are fine.
    let wrong_program = save("sandbox-token", "2000").await;
    assert_eq!(wrong_program.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        wrong_program.body.contains("Program ID") && wrong_program.body.contains("no program 2000"),
        "{}",
        wrong_program.body
    );
    assert!(
        !wrong_program.body.contains("Auth Token:"),
        "{}",
        wrong_program.body
    );
    // A wrong token: the credentials are named, not the program.
    let wrong_token = save("not-the-token", "1000").await;
    assert_eq!(wrong_token.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        // (The page escapes the slash.)
        wrong_token
            .body
            .contains("Auth Token: impact.com refused them (401)"),
        "{}",
        wrong_token.body
    );
    assert_eq!(stored(&w, P1).await?, (None, None), "nothing saved");

    let right = save("sandbox-token", "1000").await;
    assert_eq!(right.status, StatusCode::OK, "{}", right.body);
    assert!(right.body.contains("Settings saved"), "{}", right.body);
    assert_eq!(
        stored(&w, P1).await?,
        (Some("IRsandbox".into()), Some("1000".into()))
    );
    // Every check asked impact.com for the program.
    let programs: Vec<u16> = w
        .env
        .sandbox
        .impact()
        .reads()
        .iter()
        .filter(|r| r.kind == ReadKind::Program)
        .map(|r| r.status)
        .collect();
    assert_eq!(programs, [404, 401, 200]);
    w.finish().await;
    Ok(())
}

#[tokio::test]
async fn the_api_names_a_wrong_program_or_wrong_credentials() -> anyhow::Result<()> {
    let w = WebEnv::start().await?;
    let s = w.install(P1).await?;
    let path = format!("/api/v1/portals/{P1}/settings");
    let put = |body: serde_json::Value| {
        let (w, s, path) = (&w, &s, &path);
        async move { w.api(Method::PUT, path, Auth::Session(s), Some(body)).await }
    };

    let wrong_program = put(json!({
        "account_sid": "IRsandbox", "auth_token": "sandbox-token", "program_id": "2000"
    }))
    .await;
    assert_eq!(wrong_program.status, StatusCode::UNPROCESSABLE_ENTITY);
    let details = wrong_program.json()["details"].to_string();
    assert!(
        details.contains("Program ID: impact.com account IRsandbox has no program 2000"),
        "{}",
        wrong_program.body
    );
    let wrong_token = put(json!({
        "account_sid": "IRsandbox", "auth_token": "not-the-token", "program_id": "1000"
    }))
    .await;
    assert_eq!(wrong_token.status, StatusCode::UNPROCESSABLE_ENTITY);
    let details = wrong_token.json()["details"].to_string();
    assert!(
        details.contains("Account SID / Auth Token: impact.com refused them (401)"),
        "{}",
        wrong_token.body
    );
    // A wrong Account SID with the right token is a credentials problem too.
    let wrong_sid = put(json!({
        "account_sid": "IRnobody", "auth_token": "sandbox-token", "program_id": "1000"
    }))
    .await;
    assert_eq!(wrong_sid.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        wrong_sid.json()["details"]
            .to_string()
            .contains("Account SID / Auth Token"),
        "{}",
        wrong_sid.body
    );
    assert_eq!(stored(&w, P1).await?, (None, None), "nothing saved");

    let right = put(json!({
        "account_sid": "IRsandbox", "auth_token": "sandbox-token", "program_id": "1000"
    }))
    .await;
    assert_eq!(right.status, StatusCode::OK, "{}", right.body);
    assert_eq!(right.json()["status"], "saved");
    assert_eq!(right.json()["warnings"], json!([]));
    w.finish().await;
    Ok(())
}
