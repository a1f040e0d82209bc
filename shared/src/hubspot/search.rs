//! `POST /crm/v3/objects/{type}/search` by last-modified date (backfills).

use secrecy::SecretString;
use serde::Deserialize;

use super::{CrmObject, HubSpotClient, HubSpotError};
use domain::object_type::ObjectType;

/// Results per page (HubSpot allows up to 200).
const PAGE: usize = 100;

/// The last-modified property of a type: contacts differ from the rest.
pub fn last_modified_property(ty: ObjectType) -> &'static str {
    match ty {
        ObjectType::Contacts => "lastmodifieddate",
        _ => "hs_lastmodifieddate",
    }
}

impl HubSpotClient {
    /// One page of the records of `ty` last modified in `[since_ms,
    /// until_ms]` (epoch milliseconds), oldest first, with `properties`;
    /// returns the page and the cursor of the next one.
    pub async fn search_modified(
        &self,
        token: &SecretString,
        ty: ObjectType,
        since_ms: i64,
        until_ms: i64,
        properties: &[String],
        after: Option<&str>,
    ) -> Result<(Vec<CrmObject>, Option<String>), HubSpotError> {
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
            results: Vec<CrmObject>,
            paging: Option<Paging>,
        }
        let modified = last_modified_property(ty);
        let mut body = serde_json::json!({
            "filterGroups": [{ "filters": [
                { "propertyName": modified, "operator": "GTE", "value": since_ms.to_string() },
                { "propertyName": modified, "operator": "LTE", "value": until_ms.to_string() },
            ]}],
            "sorts": [{ "propertyName": modified, "direction": "ASCENDING" }],
            "properties": properties,
            "limit": PAGE,
        });
        if let Some(after) = after {
            body["after"] = serde_json::Value::String(after.to_owned());
        }
        let req = self
            .http
            .post(self.url(&format!("crm/v3/objects/{}/search", ty.as_str())))
            .json(&body);
        let page: Page = self.send_json(token, req, super::SEARCH_ENDPOINT).await?;
        let next = page.paging.and_then(|p| p.next).map(|n| n.after);
        Ok((page.results, next))
    }
}
