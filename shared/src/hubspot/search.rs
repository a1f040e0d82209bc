//! `POST /crm/v3/objects/{type}/search` by last-modified date (backfills).
//!
//! HubSpot's search reaches at most 10,000 results per query (a page past
//! them answers 400, `total` still counts every match) and sends no
//! rate-limit headers. A caller that must see every record splits a window
//! whose `total` is above the cap ([`SEARCH_RESULT_CAP`]); a window of one
//! millisecond is walked by record id instead ([`ModifiedWindow::above_id`]).

use secrecy::SecretString;
use serde::Deserialize;

use super::{CrmObject, HubSpotClient, HubSpotError};
use domain::object_type::ObjectType;

/// Results per page (HubSpot allows up to 200).
pub const SEARCH_PAGE: usize = 100;
/// Most results one search query reaches.
pub const SEARCH_RESULT_CAP: u64 = 10_000;

/// The last-modified property of a type: contacts differ from the rest.
pub fn last_modified_property(ty: ObjectType) -> &'static str {
    match ty {
        ObjectType::Contacts => "lastmodifieddate",
        _ => "hs_lastmodifieddate",
    }
}

/// Which records a search asks for: last modified in `[since_ms,
/// until_ms]` (epoch milliseconds, both included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModifiedWindow {
    /// From (included).
    pub since_ms: i64,
    /// To (included).
    pub until_ms: i64,
    /// `None`: oldest first. `Some(id)`: only records whose id is above,
    /// by id (how a window too full to split by time is walked).
    pub above_id: Option<u64>,
}

/// One page of a search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchPage {
    /// The records of the page.
    pub results: Vec<CrmObject>,
    /// The next page's cursor, if HubSpot offers one (past the cap it does,
    /// and following it fails).
    pub next: Option<String>,
    /// Every record the query matches (also beyond the cap).
    pub total: u64,
}

impl HubSpotClient {
    /// One page of the records of `ty` in `window`, with `properties`.
    pub async fn search_modified(
        &self,
        token: &SecretString,
        ty: ObjectType,
        window: &ModifiedWindow,
        properties: &[String],
        after: Option<&str>,
    ) -> Result<SearchPage, HubSpotError> {
        #[derive(Deserialize)]
        struct Next {
            after: String,
        }
        #[derive(Deserialize)]
        struct Paging {
            next: Option<Next>,
        }
        #[derive(Deserialize)]
        struct Page {
            #[serde(default)]
            total: u64,
            #[serde(default)]
            results: Vec<CrmObject>,
            paging: Option<Paging>,
        }
        let modified = last_modified_property(ty);
        let mut filters = vec![
            serde_json::json!({ "propertyName": modified, "operator": "GTE", "value": window.since_ms.to_string() }),
            serde_json::json!({ "propertyName": modified, "operator": "LTE", "value": window.until_ms.to_string() }),
        ];
        let sort = match window.above_id {
            Some(id) => {
                filters.push(serde_json::json!({ "propertyName": "hs_object_id", "operator": "GT", "value": id.to_string() }));
                "hs_object_id"
            }
            None => modified,
        };
        let mut body = serde_json::json!({
            "filterGroups": [{ "filters": filters }],
            "sorts": [{ "propertyName": sort, "direction": "ASCENDING" }],
            "properties": properties,
            "limit": SEARCH_PAGE,
        });
        if let Some(after) = after {
            body["after"] = serde_json::Value::String(after.to_owned());
        }
        let req = self
            .http
            .post(self.url(&format!("crm/v3/objects/{}/search", ty.as_str())))
            .json(&body);
        let page: Page = self.send_json(token, req, super::SEARCH_ENDPOINT).await?;
        Ok(SearchPage {
            results: page.results,
            next: page.paging.and_then(|p| p.next).map(|n| n.after),
            total: page.total,
        })
    }
}
