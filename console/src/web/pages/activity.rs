//! Preview and Activity.

use super::*;

fn types_ctx() -> Value {
    let types: Vec<_> = ObjectType::ALL
        .iter()
        .map(|t| context! { name => t.as_str(), label => label(*t) })
        .collect();
    Value::from(types)
}

/// `GET /preview`.
pub async fn preview_form(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let (site, portal, csrf, _) = session_or_return!(state, headers);
    render(
        &site,
        portal,
        &csrf,
        "preview.html",
        Outcome::default(),
        context! { types => types_ctx() },
    )
    .await
}

/// `POST /preview` (`object_type`, `object_id`).
pub async fn preview(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<Fields>,
) -> Response {
    let (site, portal, csrf, _) = checked_or_return!(state, headers, f);
    let id = f
        .get("object_id")
        .and_then(|v| v.trim().parse::<u64>().ok());
    let result = match (object_type(&f), id) {
        (Ok(ty), Some(id)) => preview::preview(&site, portal, ty, id).await,
        (Err(e), _) => Err(e),
        (_, None) => Err(OpError::Invalid(vec!["the record id is a number".into()])),
    };
    match result {
        Ok(p) => {
            let extra = context! { types => types_ctx(), result => Value::from_serialize(&p) };
            render(
                &site,
                portal,
                &csrf,
                "preview.html",
                Outcome::default(),
                extra,
            )
            .await
        }
        Err(e) => {
            render(
                &site,
                portal,
                &csrf,
                "preview.html",
                Outcome::error(e),
                context! { types => types_ctx() },
            )
            .await
        }
    }
}

async fn activity_page(
    site: &Website,
    portal: PortalId,
    csrf: &str,
    mut outcome: Outcome,
) -> Response {
    let activity = match ops::activity(site, portal).await {
        Ok(a) => a,
        Err(e) => return page_error(e.status(), &e.to_string()),
    };
    if outcome.status.is_none() {
        outcome.status = Some(StatusCode::OK);
    }
    render(
        site,
        portal,
        csrf,
        "activity.html",
        outcome,
        context! { activity => Value::from_serialize(&activity) },
    )
    .await
}

/// `GET /activity`.
pub async fn activity(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let (site, portal, csrf, _) = session_or_return!(state, headers);
    activity_page(&site, portal, &csrf, Outcome::default()).await
}

/// `POST /activity/replay` (`id`).
pub async fn replay(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<Fields>,
) -> Response {
    let (site, portal, csrf, actor) = checked_or_return!(state, headers, f);
    let id = f.get("id").and_then(|v| v.parse().ok()).unwrap_or(-1);
    let result = ops::replay(&site, portal, id, &actor).await.map(|_| vec![]);
    let notice = "Replay requested: a worker carries it out; its progress shows under Replays.";
    activity_page(&site, portal, &csrf, Outcome::of(result, notice)).await
}
