//! HubSpot CRM API client (see docs/src/reference/hubspot.md): objects, batch reads,
//! associations v4, deal pipelines, account information, and the OAuth token refresh.
//!
//! Every call takes the bearer token explicitly: the client holds no
//! per-portal state and can be shared by all portals.

mod account;
pub mod assemble;
mod batch_assoc;
mod budget;
mod error;
mod oauth;
mod properties;
mod search;
pub mod tokens;
pub mod webhooks_api;
mod window;

use std::{collections::BTreeMap, sync::Arc, time::Instant};

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

pub use account::AccountDetails;
pub use batch_assoc::BATCH_ASSOCIATIONS_LIMIT;
pub use budget::{LONGEST_WAIT, Observed, Paused, RateBudget, Slot};
pub use error::{HubSpotError, describe as describe_error};
pub use oauth::{OAuthApp, OAuthError, TokenGrant};
pub use properties::PropertyInfo;
pub use search::{
    ModifiedWindow, SEARCH_PAGE, SEARCH_RESULT_CAP, SearchPage, last_modified_property,
};

use domain::object_type::ObjectType;

/// The metrics label of CRM search calls (answered without rate-limit headers).
const SEARCH_ENDPOINT: &str = "search";

/// Largest number of ids in one batch read.
pub const BATCH_READ_LIMIT: usize = 100;

/// A CRM record: id and the requested properties.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CrmObject {
    /// The record id.
    pub id: String,
    /// Requested properties (`None`: empty).
    #[serde(default)]
    pub properties: BTreeMap<String, Option<String>>,
}

/// One association of a record (v4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Association {
    /// The associated record's id.
    pub to_object_id: u64,
    /// Labels of the association types (e.g. `Primary`).
    pub labels: Vec<String>,
}

/// A deal pipeline and its stages.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Pipeline {
    /// Pipeline id (`default`, or numeric).
    pub id: String,
    /// Pipeline label.
    #[serde(default)]
    pub label: String,
    /// Its stages.
    #[serde(default)]
    pub stages: Vec<Stage>,
}

/// A deal stage.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Stage {
    /// Internal id (`closedwon`, or numeric).
    pub id: String,
    /// Label shown in HubSpot (`Closed Won`).
    #[serde(default)]
    pub label: String,
}

/// A HubSpot API client. Cheap to clone.
#[derive(Debug, Clone)]
pub struct HubSpotClient {
    pub(crate) http: reqwest::Client,
    base: url::Url,
    budget: Arc<RateBudget>,
}

impl HubSpotClient {
    /// A client for `base_url` (`https://api.hubapi.com`, or a fake's URL).
    pub fn new(http: reqwest::Client, base_url: &str) -> Result<Self, url::ParseError> {
        let mut base = url::Url::parse(base_url)?;
        if !base.path().ends_with('/') {
            let p = format!("{}/", base.path());
            base.set_path(&p);
        }
        Ok(Self {
            http,
            base,
            budget: Arc::default(),
        })
    }

    /// Shares the rate budget through the database: every process using
    /// the same database (workers, ingest's website) splits an account's
    /// HubSpot limit instead of each spending all of it.
    pub fn with_shared_budget(mut self, pool: sqlx::PgPool) -> Self {
        self.budget = Arc::new(RateBudget::shared(pool));
        self
    }

    pub(crate) fn url(&self, path: &str) -> url::Url {
        self.base
            .join(path.trim_start_matches('/'))
            .expect("relative API paths join onto a valid base URL")
    }

    /// `GET /crm/v3/objects/{type}/{id}?properties=...`.
    pub async fn get_object(
        &self,
        token: &SecretString,
        ty: ObjectType,
        id: u64,
        properties: &[String],
    ) -> Result<CrmObject, HubSpotError> {
        let mut url = self.url(&format!("crm/v3/objects/{}/{id}", ty.as_str()));
        if !properties.is_empty() {
            url.query_pairs_mut()
                .append_pair("properties", &properties.join(","));
        }
        let req = self.http.get(url);
        self.send_json(token, req, "get_object").await
    }

    /// `POST /crm/v3/objects/{type}/batch/read`, in chunks of 100. Records
    /// HubSpot reports missing (207) are left out.
    pub async fn batch_read(
        &self,
        token: &SecretString,
        ty: &str,
        ids: &[u64],
        properties: &[String],
    ) -> Result<Vec<CrmObject>, HubSpotError> {
        #[derive(Deserialize)]
        struct Batch {
            #[serde(default)]
            results: Vec<CrmObject>,
        }
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(BATCH_READ_LIMIT) {
            let body = serde_json::json!({
                "properties": properties,
                "propertiesWithHistory": [],
                "inputs": chunk.iter().map(|id| serde_json::json!({"id": id.to_string()})).collect::<Vec<_>>(),
            });
            let req = self
                .http
                .post(self.url(&format!("crm/v3/objects/{ty}/batch/read")))
                .json(&body);
            let batch: Batch = self.send_json(token, req, "batch_read").await?;
            out.extend(batch.results);
        }
        Ok(out)
    }

    /// `GET /crm/v4/objects/{from}/{id}/associations/{to}`, every page.
    pub async fn associations(
        &self,
        token: &SecretString,
        from: ObjectType,
        id: u64,
        to: &str,
    ) -> Result<Vec<Association>, HubSpotError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Page {
            #[serde(default)]
            results: Vec<Row>,
            paging: Option<Paging>,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Row {
            to_object_id: serde_json::Value,
            #[serde(default)]
            association_types: Vec<Kind>,
        }
        #[derive(Deserialize)]
        struct Kind {
            label: Option<String>,
        }
        #[derive(Deserialize)]
        struct Paging {
            next: Option<Next>,
        }
        #[derive(Deserialize)]
        struct Next {
            after: String,
        }
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut url = self.url(&format!(
                "crm/v4/objects/{}/{id}/associations/{to}",
                from.as_str()
            ));
            url.query_pairs_mut().append_pair("limit", "500");
            if let Some(a) = &after {
                url.query_pairs_mut().append_pair("after", a);
            }
            let req = self.http.get(url);
            let page: Page = self.send_json(token, req, "associations").await?;
            for row in page.results {
                let id = match &row.to_object_id {
                    serde_json::Value::Number(n) => n.as_u64(),
                    serde_json::Value::String(s) => s.parse().ok(),
                    _ => None,
                };
                let Some(to_object_id) = id else {
                    return Err(HubSpotError::Decode(format!(
                        "association toObjectId {}",
                        row.to_object_id
                    )));
                };
                out.push(Association {
                    to_object_id,
                    labels: row
                        .association_types
                        .into_iter()
                        .filter_map(|k| k.label)
                        .collect(),
                });
            }
            match page.paging.and_then(|p| p.next) {
                Some(n) => after = Some(n.after),
                None => return Ok(out),
            }
        }
    }

    /// `GET /crm/v3/pipelines/deals`.
    pub async fn deal_pipelines(
        &self,
        token: &SecretString,
    ) -> Result<Vec<Pipeline>, HubSpotError> {
        #[derive(Deserialize)]
        struct Pipelines {
            #[serde(default)]
            results: Vec<Pipeline>,
        }
        let req = self.http.get(self.url("crm/v3/pipelines/deals"));
        let p: Pipelines = self.send_json(token, req, "pipelines").await?;
        Ok(p.results)
    }

    /// Sends, counts and times a request, and decodes a 2xx JSON answer.
    pub(crate) async fn send_json<T: serde::de::DeserializeOwned>(
        &self,
        token: &SecretString,
        req: reqwest::RequestBuilder,
        endpoint: &'static str,
    ) -> Result<T, HubSpotError> {
        let slot = match self.budget.acquire(token.expose_secret()).await {
            Ok(slot) => slot,
            Err(paused) => {
                metrics::counter!("hubspot_requests_total", "endpoint" => endpoint, "status" => "paused")
                .increment(1);
                return Err(HubSpotError::RateLimited {
                    policy: "DAILY".into(),
                    retry_after: paused.retry_after,
                });
            }
        };
        let started = Instant::now();
        let result = req.bearer_auth(token.expose_secret()).send().await;
        metrics::histogram!("hubspot_request_duration_seconds", "endpoint" => endpoint)
            .record(started.elapsed().as_secs_f64());
        let resp = match result {
            Ok(r) => r,
            Err(e) => {
                self.budget
                    .answered(token.expose_secret(), slot, Observed::default(), None)
                    .await;
                metrics::counter!("hubspot_requests_total", "endpoint" => endpoint, "status" => "error")
                    .increment(1);
                return Err(HubSpotError::Unavailable(error::describe(&e)));
            }
        };
        let status = resp.status();
        metrics::counter!("hubspot_requests_total", "endpoint" => endpoint, "status" => status.as_u16().to_string())
            .increment(1);
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        let seen = Observed {
            max: header("x-hubspot-ratelimit-max"),
            interval_ms: header("x-hubspot-ratelimit-interval-milliseconds"),
            remaining: header("x-hubspot-ratelimit-remaining"),
            limited: status.as_u16() == 429,
            success: status.is_success(),
            // HubSpot's search sends no rate-limit headers (it has its own
            // limit): its answers must not read as "unlimited".
            headerless: endpoint == SEARCH_ENDPOINT,
        };
        if status.is_success() {
            self.budget
                .answered(token.expose_secret(), slot, seen, None)
                .await;
            let bytes = resp
                .bytes()
                .await
                .map_err(|e| HubSpotError::Unavailable(error::describe(&e)))?;
            return serde_json::from_slice(&bytes)
                .map_err(|e| HubSpotError::Decode(format!("{endpoint}: {e}")));
        }
        let err = HubSpotError::from_response(resp).await;
        let limited = match &err {
            HubSpotError::RateLimited {
                policy,
                retry_after,
            } => Some((policy.as_str(), *retry_after)),
            _ => None,
        };
        self.budget
            .answered(token.expose_secret(), slot, seen, limited)
            .await;
        Err(err)
    }
}
