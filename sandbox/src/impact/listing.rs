//! `GET /Advertisers/{SID}/Actions`: a program's actions, as impact.com's
//! Brand API lists them. An action is an accepted conversion whose
//! submission completed without error (none for a rejected or duplicate
//! one), created when it completed.
//!
//! impact.com's rules: `CampaignId` is required; `StartDate`/`EndDate`
//! (last update) go together, at most 45 days apart, `StartDate` at most
//! three years back; `ActionDateStart`/`ActionDateEnd` filter on the
//! `EventDate`; without dates, the last 7 days of updates; newest created
//! first; `PageSize` 20,000 by default and at least 2,000; more than ten
//! pages is a 400. The paging envelope (`@page`, `@numpages`, `@total`,
//! `@nextpageuri`, ...) and the values are strings, as impact.com writes
//! them.

use std::collections::BTreeMap;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use serde_json::{Value, json};

use super::reads::{ReadKind, answer, gate};
use super::status::{completed_at, error_of};
use super::{FakeImpact, Submission, SubmissionKind, body};
use crate::lock;

/// impact.com's smallest page.
pub(crate) const MIN_PAGE_SIZE: u32 = 2_000;
/// impact.com's default (and here largest) page.
const DEFAULT_PAGE_SIZE: u32 = 20_000;
/// More pages than this is refused.
const MAX_PAGES: usize = 10;

/// An action of the fake: its JSON, and what the filters look at.
struct FakeAction {
    json: Value,
    campaign_id: String,
    state: &'static str,
    created: DateTime<Utc>,
    updated: DateTime<Utc>,
    event_date: Option<DateTime<Utc>>,
}

fn date(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s.trim())
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            NaiveDateTime::parse_from_str(s.trim(), "%Y-%m-%dT%H:%M:%S")
                .ok()
                .map(|t| t.and_utc())
        })
}

/// The tracker id of an event type code: declared, or one derived from the code.
fn tracker_of(imp: &FakeImpact, sub: &Submission) -> u64 {
    let id = sub
        .param("ActionTrackerId")
        .or_else(|| sub.param("EventTypeId"))
        .and_then(|v| v.trim().parse().ok());
    id.unwrap_or_else(|| {
        let code = sub.param("EventTypeCode").unwrap_or_default();
        lock(&imp.state.event_types)
            .get(code)
            .copied()
            .unwrap_or_else(|| {
                9_000
                    + code
                        .bytes()
                        .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)))
                        % 900
            })
    })
}

fn amount(sub: &Submission) -> f64 {
    let num = |k: &str| sub.param(k).and_then(|v| v.trim().parse::<f64>().ok());
    num("Amount").unwrap_or_else(|| {
        (1..)
            .map_while(|i| {
                let price = num(&format!("ItemPrice{i}"));
                let total = num(&format!("ItemSubTotal{i}"));
                let qty = num(&format!("ItemQuantity{i}")).unwrap_or(1.0);
                total.or(price.map(|p| p * qty))
            })
            .sum()
    })
}

/// OrderId → when an accepted change (`PUT`/`DELETE /Actions`) last touched it.
type Changes = std::collections::HashMap<String, DateTime<Utc>>;

fn action_of(
    imp: &FakeImpact,
    sid: &str,
    sub: &Submission,
    changes: &Changes,
) -> Option<FakeAction> {
    let done = completed_at(imp, sub)?;
    if error_of(imp, sub).is_some() {
        return None;
    }
    let waited = Duration::from_std(done.elapsed()).unwrap_or_default();
    let created = Utc::now() - waited;
    let campaign_id = sub.param("CampaignId")?.trim().to_owned();
    let oid = sub.param("OrderId")?.to_owned();
    let tracker = tracker_of(imp, sub);
    let code = sub.param("EventTypeCode").map(str::to_owned).or_else(|| {
        lock(&imp.state.event_types)
            .iter()
            .find(|(_, id)| **id == tracker)
            .map(|(c, _)| c.clone())
    });
    let reversed =
        lock(&imp.state.reversed).contains(&(sid.to_owned(), tracker.to_string(), oid.clone()));
    let updated = changes
        .get(&oid)
        .copied()
        .map_or(created, |t| t.max(created));
    let state = if reversed { "REVERSED" } else { "PENDING" };
    let id = format!("{campaign_id}.{tracker}.{}", sub.seq);
    let json = json!({
        "Id": id,
        "CampaignId": campaign_id,
        "CampaignName": format!("Sandbox program {campaign_id}"),
        "ActionTrackerId": tracker.to_string(),
        "ActionTrackerName": code.clone().unwrap_or_else(|| format!("Event type {tracker}")),
        "EventCode": code.unwrap_or_default(),
        "MediaPartnerId": "10000",
        "MediaPartnerName": "Sandbox partner",
        "State": state,
        "Amount": format!("{:.2}", amount(sub)),
        "Currency": sub.param("CurrencyCode").unwrap_or("USD"),
        "EventDate": sub.param("EventDate").unwrap_or_default(),
        "CreationDate": created.to_rfc3339(),
        "LockingDate": (created + Duration::days(30)).to_rfc3339(),
        "Oid": oid,
        "CustomerId": sub.param("CustomerId").unwrap_or_default(),
        "PromoCode": sub.param("OrderPromoCode").unwrap_or_default(),
        "Uri": format!("/Advertisers/{sid}/Actions/{id}"),
    });
    Some(FakeAction {
        event_date: sub.param("EventDate").and_then(date),
        json,
        campaign_id,
        state,
        created,
        updated,
    })
}

/// What the query asks for, or the 400 message.
struct Filter {
    updated: Range,
    event: Option<Range>,
    state: Option<String>,
}

/// A date range of the query.
type Range = (DateTime<Utc>, DateTime<Utc>);

fn range(q: &BTreeMap<String, String>, from: &str, to: &str) -> Result<Option<Range>, String> {
    match (q.get(from), q.get(to)) {
        (None, None) => Ok(None),
        (Some(_), None) => Err(format!("{to} is required when {from} is specified")),
        (None, Some(_)) => Err(format!("{from} is required when {to} is specified")),
        (Some(a), Some(b)) => {
            let parse = |name: &str, v: &str| {
                date(v).ok_or_else(|| format!("{name} must be an ISO 8601 date with a time: {v}"))
            };
            let (a, b) = (parse(from, a)?, parse(to, b)?);
            if b - a > Duration::days(45) {
                return Err(format!("{from} and {to} cannot be more than 45 days apart"));
            }
            if a < Utc::now() - Duration::days(3 * 365) {
                return Err(format!("{from} cannot be more than 3 years in the past"));
            }
            Ok(Some((a, b)))
        }
    }
}

impl Filter {
    fn parse(q: &BTreeMap<String, String>) -> Result<Self, String> {
        let updated = range(q, "StartDate", "EndDate")?;
        let event = range(q, "ActionDateStart", "ActionDateEnd")?;
        let state = q.get("State").map(|s| s.to_ascii_uppercase());
        if let Some(s) = &state
            && !["PENDING", "APPROVED", "REVERSED"].contains(&s.as_str())
        {
            return Err(format!("State must be PENDING, APPROVED or REVERSED: {s}"));
        }
        let now = Utc::now();
        // Without any date, the last 7 days of updates.
        let updated = match (updated, event) {
            (Some(u), _) => u,
            (None, Some(_)) => (DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC),
            (None, None) => (now - Duration::days(7), now),
        };
        Ok(Filter {
            updated,
            event,
            state,
        })
    }

    fn keeps(&self, a: &FakeAction) -> bool {
        a.updated >= self.updated.0
            && a.updated <= self.updated.1
            && self
                .event
                .is_none_or(|(from, to)| a.event_date.is_some_and(|d| d >= from && d <= to))
            && self.state.as_deref().is_none_or(|s| s == a.state)
    }
}

pub(crate) async fn list_actions(
    State(imp): State<FakeImpact>,
    Path(sid): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let g = match gate(&imp, &headers, &sid, ReadKind::Actions) {
        Ok(g) => g,
        Err(resp) => return *resp,
    };
    let q: BTreeMap<String, String> = body::query(raw.as_deref()).into_iter().collect();
    let bad = |message: String| {
        let body = json!({"Status": "ERROR", "Message": message});
        answer(
            &imp,
            ReadKind::Actions,
            &sid,
            &g,
            StatusCode::BAD_REQUEST,
            body,
        )
    };
    let Some(campaign) = q.get("CampaignId").map(|c| c.trim().to_owned()) else {
        return bad("CampaignId is required".into());
    };
    let filter = match Filter::parse(&q) {
        Ok(f) => f,
        Err(m) => return bad(m),
    };
    let min = lock(&imp.state.settings).actions_min_page_size;
    let size = match q.get("PageSize").map(|s| s.trim().parse::<u32>()) {
        None => DEFAULT_PAGE_SIZE,
        Some(Ok(n)) => n.clamp(min, DEFAULT_PAGE_SIZE),
        Some(Err(_)) => return bad("PageSize must be a number".into()),
    } as usize;
    let page = match q.get("Page").map(|s| s.trim().parse::<usize>()) {
        None => 1,
        Some(Ok(n)) if n >= 1 => n,
        Some(_) => return bad("Page must be a number from 1".into()),
    };
    let (subs, changes) = submissions_of(&imp, &sid);
    let mut list: Vec<FakeAction> = subs
        .iter()
        .filter_map(|s| action_of(&imp, &sid, s, &changes))
        .filter(|a| a.campaign_id == campaign && filter.keeps(a))
        .collect();
    list.sort_by_key(|a| std::cmp::Reverse(a.created));
    let total = list.len();
    if total > MAX_PAGES * size {
        return bad(format!(
            "The result has {total} records, more than 10 pages of {size}: \
             narrow StartDate and EndDate or raise PageSize"
        ));
    }
    let body = envelope(&sid, &q, page, size, total, list);
    answer(&imp, ReadKind::Actions, &sid, &g, StatusCode::OK, body)
}

/// The account's accepted conversions, and its latest changes by OrderId.
fn submissions_of(imp: &FakeImpact, sid: &str) -> (Vec<Submission>, Changes) {
    let log = lock(&imp.state.log);
    let mut subs = Vec::new();
    let mut changes = Changes::new();
    for s in log.iter().filter(|s| s.accepted() && s.account_sid == sid) {
        if s.kind == SubmissionKind::Conversion {
            subs.push(s.clone());
        } else if let Some(oid) = s.param("OrderId") {
            let t = changes.entry(oid.to_owned()).or_insert(s.received_at);
            *t = (*t).max(s.received_at);
        }
    }
    (subs, changes)
}

/// The page in impact.com's paging envelope.
fn envelope(
    sid: &str,
    q: &BTreeMap<String, String>,
    page: usize,
    size: usize,
    total: usize,
    list: Vec<FakeAction>,
) -> Value {
    let pages = total.div_ceil(size).max(1);
    let uri = |p: usize| {
        let mut params = q.clone();
        params.insert("Page".into(), p.to_string());
        params.insert("PageSize".into(), size.to_string());
        let query = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params.iter())
            .finish();
        format!("/Advertisers/{sid}/Actions?{query}")
    };
    let start = (page - 1) * size;
    let items: Vec<Value> = list
        .into_iter()
        .skip(start)
        .take(size)
        .map(|a| a.json)
        .collect();
    let end = (start + items.len()).saturating_sub(1);
    json!({
        "@page": page.to_string(),
        "@numpages": pages.to_string(),
        "@pagesize": size.to_string(),
        "@total": total.to_string(),
        "@start": start.to_string(),
        "@end": end.to_string(),
        "@uri": uri(page),
        "@firstpageuri": uri(1),
        "@previouspageuri": if page > 1 { uri(page - 1) } else { String::new() },
        "@nextpageuri": if page < pages { uri(page + 1) } else { String::new() },
        "@lastpageuri": uri(pages),
        "Actions": items,
    })
}
