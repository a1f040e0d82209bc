//! `GET {base}/Advertisers/{SID}/Actions`: the actions (credited
//! conversions) of one program whose last update falls in a window, a page
//! at a time (see docs/src/outcomes.md).
//!
//! impact.com's rules for this list: `CampaignId` is required; `StartDate`
//! and `EndDate` (ISO 8601 with a time) go together, filter on the action's
//! last update, and may be at most 45 days apart; the default and largest
//! useful `PageSize` is 20,000; a result over ten pages is refused. Pages
//! are linked by `@nextpageuri` (empty on the last one); numbers often come
//! as strings.

use chrono::{DateTime, SecondsFormat, Utc};
use domain::outcome::credited::ListedAction;

use super::read::{relative, text};
use super::{ImpactClient, ImpactCredentials, ImpactError};

/// Actions per page asked for (impact.com's default and documented size).
pub const ACTIONS_PAGE_SIZE: u32 = 20_000;

/// Which actions to list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionsQuery {
    /// The program (`CampaignId`).
    pub campaign_id: String,
    /// Last updated on or after.
    pub start: DateTime<Utc>,
    /// Last updated on or before.
    pub end: DateTime<Utc>,
}

impl ActionsQuery {
    /// The first page's path and query for account `sid`.
    pub fn first_page(&self, sid: &str) -> String {
        let date = |t: &DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("CampaignId", &self.campaign_id)
            .append_pair("StartDate", &date(&self.start))
            .append_pair("EndDate", &date(&self.end))
            .append_pair("PageSize", &ACTIONS_PAGE_SIZE.to_string())
            .finish();
        format!("/Advertisers/{sid}/Actions?{query}")
    }
}

/// One page of actions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActionsPage {
    /// The actions on this page.
    pub actions: Vec<ListedAction>,
    /// The next page's path (from `@nextpageuri`), if any.
    pub next: Option<String>,
    /// `@total`: actions in the whole result.
    pub total: Option<u64>,
}

impl ImpactClient {
    /// Reads one page: `path` is [`ActionsQuery::first_page`] or a previous
    /// page's [`ActionsPage::next`]. Counts against the account's hourly
    /// budget like any request.
    pub async fn list_actions(
        &self,
        creds: &ImpactCredentials,
        path: &str,
    ) -> Result<ActionsPage, ImpactError> {
        let Some(path) = relative(path, &creds.account_sid, "Actions") else {
            return Err(ImpactError::Rejected {
                status: 0,
                body: "not a path of this account's Actions".into(),
            });
        };
        let answer = self.read(creds, &path).await?;
        parse_page(&answer.body, &creds.account_sid).ok_or_else(|| {
            ImpactError::Unavailable(format!(
                "{}: the list of actions is not the documented JSON",
                answer.status
            ))
        })
    }
}

fn date(v: &serde_json::Value, name: &str) -> Option<DateTime<Utc>> {
    let s = text(v, name)?;
    DateTime::parse_from_rfc3339(&s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// A page's body: `{"@page": "1", ..., "@nextpageuri": "...", "Actions": [...]}`.
fn parse_page(body: &str, sid: &str) -> Option<ActionsPage> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    let items = match v.get("Actions") {
        Some(serde_json::Value::Array(items)) => items.as_slice(),
        // An empty list may come without the array.
        None | Some(serde_json::Value::Null) => &[],
        Some(_) => return None,
    };
    let actions = items
        .iter()
        .filter_map(|a| {
            Some(ListedAction {
                campaign_id: text(a, "CampaignId")?,
                order_id: text(a, "Oid")?,
                tracker_id: text(a, "ActionTrackerId"),
                event_code: text(a, "EventCode"),
                state: text(a, "State"),
                created_at: date(a, "CreationDate"),
            })
        })
        .collect();
    let next = text(&v, "@nextpageuri").and_then(|u| relative(&u, sid, "Actions"));
    let total = text(&v, "@total").and_then(|t| t.parse().ok());
    Some(ActionsPage {
        actions,
        next,
        total,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_page_asks_for_the_window_and_the_largest_page() {
        let q = ActionsQuery {
            campaign_id: "1000".into(),
            start: DateTime::parse_from_rfc3339("2026-12-04T10:00:00Z")
                .expect("date")
                .with_timezone(&Utc),
            end: DateTime::parse_from_rfc3339("2026-12-04T10:40:00.5Z")
                .expect("date")
                .with_timezone(&Utc),
        };
        assert_eq!(
            q.first_page("IR1"),
            "/Advertisers/IR1/Actions?CampaignId=1000&StartDate=2026-12-04T10%3A00%3A00Z\
             &EndDate=2026-12-04T10%3A40%3A00Z&PageSize=20000"
        );
    }

    #[test]
    fn pages_parse_with_strings_or_numbers_and_link_to_the_next() {
        let body = r#"{"@page":"1","@numpages":"2","@pagesize":"20000","@total":"20001",
            "@nextpageuri":"/Advertisers/IR1/Actions?CampaignId=1000&Page=2&PageSize=20000",
            "Actions":[
              {"Id":"1000.4000.1","CampaignId":"1000","ActionTrackerId":"4000","EventCode":"Sale",
               "State":"PENDING","Oid":"9001_closedwon","CreationDate":"2026-12-04T10:01:00-08:00"},
              {"Id":"1000.4000.2","CampaignId":1000,"ActionTrackerId":4000,"State":"REVERSED",
               "Oid":"9002_closedwon","CreationDate":""},
              {"Id":"no order id","CampaignId":"1000"}
            ]}"#;
        let page = parse_page(body, "IR1").expect("parses");
        assert_eq!(page.total, Some(20_001));
        assert_eq!(
            page.next.as_deref(),
            Some("/Advertisers/IR1/Actions?CampaignId=1000&Page=2&PageSize=20000")
        );
        assert_eq!(page.actions.len(), 2);
        assert_eq!(page.actions[0].event_code.as_deref(), Some("Sale"));
        assert_eq!(
            page.actions[0].created_at.map(|t| t.to_rfc3339()),
            Some("2026-12-04T18:01:00+00:00".into())
        );
        assert_eq!(page.actions[1].campaign_id, "1000");
        assert_eq!(page.actions[1].tracker_id.as_deref(), Some("4000"));
        assert_eq!(page.actions[1].created_at, None);

        let last =
            parse_page(r#"{"@page":"2","@nextpageuri":"","Actions":[]}"#, "IR1").expect("parses");
        assert_eq!((last.next, last.actions.len()), (None, 0));
        assert!(parse_page("<ImpactRadiusResponse/>", "IR1").is_none());
        assert!(parse_page(r#"{"Actions":"nope"}"#, "IR1").is_none());
    }
}
