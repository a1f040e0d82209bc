//! A conversion's page (its whole story, "send again" behind a
//! confirmation) and a dead letter's page (with Replay).

use axum::extract::Path;
use shared::db::website::story;

use super::*;

fn portal_key(portal: PortalId) -> i64 {
    i64::try_from(portal.0).unwrap_or(-1)
}

/// The impact.com fields as the page lists them: each parameter sent with
/// the source it came from (`None`: the connector set it, e.g. the
/// Program ID as `CampaignId`).
#[derive(Serialize)]
struct FieldLine {
    name: String,
    value: String,
    source: Option<String>,
}

fn field_lines(params: &[(String, String)], fetched: Option<&serde_json::Value>) -> Vec<FieldLine> {
    let sources = fetched.and_then(|f| f.get("sources"));
    params
        .iter()
        .map(|(name, value)| {
            // ItemSku3 comes from the row of ItemSku{i}.
            let base = name.trim_end_matches(|c: char| c.is_ascii_digit());
            let source = sources
                .and_then(|s| s.get(name).or_else(|| s.get(format!("{base}{{i}}"))))
                .and_then(|v| v.as_str())
                .map(str::to_owned)
                .or_else(|| match name.as_str() {
                    "CampaignId" => Some("Program ID (Settings)".into()),
                    "CurrencyCode" => Some("the record's currency (not mapped)".into()),
                    _ => None,
                });
            FieldLine {
                name: name.clone(),
                value: value.clone(),
                source,
            }
        })
        .collect()
}

async fn conversion_page(
    site: &Website,
    portal: PortalId,
    csrf: &str,
    id: i64,
    outcome: Outcome,
    confirm: bool,
) -> Response {
    let found = match story::conversion(&site.pool, portal_key(portal), id).await {
        Ok(f) => f,
        Err(e) => return internal_error("conversion page", e),
    };
    let Some(s) = found else {
        return page_error(StatusCode::NOT_FOUND, "No such conversion for this portal.");
    };
    let fields = field_lines(&s.params, s.fetched.as_ref());
    let extra = context! {
        story => Value::from_serialize(&s),
        fields => Value::from_serialize(&fields),
        confirm => confirm,
    };
    render(site, portal, csrf, "conversion.html", outcome, extra).await
}

/// `GET /conversions/{id}`.
pub async fn conversion(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Response {
    let (site, portal, csrf, _) = session_or_return!(state, headers);
    conversion_page(&site, portal, &csrf, id, Outcome::default(), false).await
}

/// `GET /conversions/{id}/send-again`: the confirmation.
pub async fn send_again_form(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Response {
    let (site, portal, csrf, _) = session_or_return!(state, headers);
    conversion_page(&site, portal, &csrf, id, Outcome::default(), true).await
}

/// `POST /conversions/{id}/send-again` (`confirm` = `yes`).
pub async fn send_again(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(f): Form<Fields>,
) -> Response {
    let (site, portal, csrf, actor) = checked_or_return!(state, headers, f);
    if f.get("confirm").map(String::as_str) != Some("yes") {
        let outcome = Outcome::error(OpError::Invalid(vec![
            "Tick the box to confirm that impact.com may credit this sale twice.".into(),
        ]));
        return conversion_page(&site, portal, &csrf, id, outcome, true).await;
    }
    let result = ops::send_again(&site, portal, id, &actor)
        .await
        .map(|_| vec![]);
    let notice = "Sending again: a worker posts the parameters as sent; the new attempt shows below, and the request under Activity → Replays.";
    conversion_page(&site, portal, &csrf, id, Outcome::of(result, notice), false).await
}

/// `GET /dead-letters/{id}`.
pub async fn dead_letter(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Response {
    let (site, portal, csrf, _) = session_or_return!(state, headers);
    let found = match story::dead_letter(&site.pool, portal_key(portal), id).await {
        Ok(f) => f,
        Err(e) => return internal_error("dead letter page", e),
    };
    let Some(letter) = found else {
        return page_error(
            StatusCode::NOT_FOUND,
            "No such dead letter for this portal.",
        );
    };
    let fields = field_lines(&letter.params, None);
    let extra = context! {
        letter => Value::from_serialize(&letter),
        fields => Value::from_serialize(&fields),
    };
    render(
        &site,
        portal,
        &csrf,
        "dead_letter.html",
        Outcome::default(),
        extra,
    )
    .await
}
