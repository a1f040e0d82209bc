//! Preview and Activity.

use shared::db::website;

use super::{search, *};

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

/// Conversions per page of Activity.
const PAGE: i64 = 50;
/// Rows of a CSV export at most.
const CSV_MAX: usize = 100_000;

async fn activity_page(
    site: &Website,
    portal: PortalId,
    csrf: &str,
    q: &Fields,
    mut outcome: Outcome,
) -> Response {
    let (filter, problems) = search::filter(q);
    outcome.errors.extend(problems);
    let before = q.get("before").and_then(|b| b.parse::<i64>().ok());
    let id = i64::try_from(portal.0).unwrap_or(-1);
    let mut rows =
        match website::search::conversions(&site.pool, id, &filter, before, PAGE + 1).await {
            Ok(r) => r,
            Err(e) => return internal_error("activity search", e),
        };
    let older = (rows.len() as i64 > PAGE).then(|| {
        rows.truncate(PAGE as usize);
        rows.last().map(|c| c.id)
    });
    let mut activity = match ops::activity(site, portal).await {
        Ok(a) => a,
        Err(e) => return page_error(e.status(), &e.to_string()),
    };
    activity.conversions = rows;
    if outcome.status.is_none() {
        outcome.status = Some(StatusCode::OK);
    }
    let query = search::query_string(q);
    render(
        site,
        portal,
        csrf,
        "activity.html",
        outcome,
        context! {
            activity => Value::from_serialize(&activity),
            filter => Value::from_serialize(q),
            query => query,
            older => older.flatten(),
            paged => before.is_some(),
        },
    )
    .await
}

/// `GET /activity`: filters `q` (OrderId, HubSpot object id or ClickId),
/// `status`, `outcome`, `object_type`, `from`, `to` (dates, UTC); `before`
/// (the last id of the previous page).
pub async fn activity(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<Fields>,
) -> Response {
    let (site, portal, csrf, _) = session_or_return!(state, headers);
    activity_page(&site, portal, &csrf, &q, Outcome::default()).await
}

/// `GET /activity.csv`: the filtered conversions (all pages, at most
/// 100,000 rows), as CSV.
pub async fn activity_csv(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<Fields>,
) -> Response {
    let (site, portal, _, _) = session_or_return!(state, headers);
    let (filter, problems) = search::filter(&q);
    if !problems.is_empty() {
        return page_error(StatusCode::UNPROCESSABLE_ENTITY, &problems.join(" "));
    }
    let id = i64::try_from(portal.0).unwrap_or(-1);
    let mut out = String::from(search::CSV_HEADER);
    let mut before = None;
    let mut n = 0;
    loop {
        let rows = match website::search::conversions(&site.pool, id, &filter, before, 1000).await {
            Ok(r) => r,
            Err(e) => return internal_error("activity export", e),
        };
        for c in &rows {
            search::csv_row(&mut out, c);
        }
        n += rows.len();
        match rows.last() {
            Some(last) if rows.len() == 1000 && n < CSV_MAX => before = Some(last.id),
            _ => break,
        }
    }
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"conversions.csv\"",
            ),
        ],
        out,
    )
        .into_response()
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
    activity_page(
        &site,
        portal,
        &csrf,
        &Fields::new(),
        Outcome::of(result, notice),
    )
    .await
}
