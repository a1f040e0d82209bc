//! HubSpot's Webhooks API (v3), which manages a public app's webhook
//! settings and subscriptions: `GET|PUT /webhooks/v3/{appId}/settings`,
//! `GET|POST /webhooks/v3/{appId}/subscriptions`,
//! `PATCH /webhooks/v3/{appId}/subscriptions/{id}`.
//!
//! It authenticates with the developer account's API key, passed as the
//! `hapikey` query parameter (as HubSpot's reference and its official
//! clients do). The key is in the URL, so no URL is ever put in an error
//! or a log line: errors name the method and the path only.

use domain::subscriptions::plan::{AppSettings, Existing, Key};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};

/// What went wrong calling the Webhooks API.
#[derive(Debug, thiserror::Error)]
pub enum WebhooksApiError {
    /// HubSpot answered with an error status.
    #[error("HubSpot answered {status} to {method} {path}: {message}")]
    Status {
        /// `GET`, `PUT`, ...
        method: &'static str,
        /// The path, without the query (which holds the key).
        path: String,
        /// HTTP status.
        status: u16,
        /// HubSpot's `message` (and `category`), or the raw answer.
        message: String,
    },
    /// No answer (connection, timeout).
    #[error("HubSpot unreachable for {method} {path}: {detail}")]
    Unreachable {
        /// `GET`, `PUT`, ...
        method: &'static str,
        /// The path.
        path: String,
        /// What failed (without the URL).
        detail: String,
    },
    /// A 2xx answer without the documented shape.
    #[error("unexpected HubSpot answer to {method} {path}: {detail}")]
    Decode {
        /// `GET`, `PUT`, ...
        method: &'static str,
        /// The path.
        path: String,
        /// What did not fit.
        detail: String,
    },
}

/// A client of one app's webhooks.
#[derive(Clone)]
pub struct WebhooksApi {
    http: reqwest::Client,
    base: url::Url,
    app_id: u64,
    key: SecretString,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SubscriptionBody {
    #[serde(deserialize_with = "id_text")]
    id: String,
    event_type: String,
    #[serde(default)]
    property_name: Option<String>,
    #[serde(default)]
    active: bool,
}

#[derive(Deserialize)]
struct ListBody {
    results: Vec<SubscriptionBody>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SettingsBody {
    target_url: String,
    #[serde(default)]
    throttling: Option<Throttling>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Throttling {
    max_concurrent_requests: u32,
}

/// Ids are strings in HubSpot's answers; accept numbers too.
fn id_text<'de, D: serde::Deserializer<'de>>(de: D) -> Result<String, D::Error> {
    match Value::deserialize(de)? {
        Value::String(s) => Ok(s),
        Value::Number(n) => Ok(n.to_string()),
        other => Err(serde::de::Error::custom(format!("id {other}"))),
    }
}

impl From<SubscriptionBody> for Existing {
    fn from(b: SubscriptionBody) -> Self {
        Existing {
            id: b.id,
            event_type: b.event_type,
            property_name: b.property_name.filter(|p| !p.is_empty()),
            active: b.active,
        }
    }
}

impl WebhooksApi {
    /// A client for app `app_id` at `base_url` (`https://api.hubapi.com`,
    /// or a fake's URL), with the developer API key `key`.
    pub fn new(
        http: reqwest::Client,
        base_url: &str,
        app_id: u64,
        key: SecretString,
    ) -> Result<Self, url::ParseError> {
        let mut base = url::Url::parse(base_url)?;
        if !base.path().ends_with('/') {
            let p = format!("{}/", base.path());
            base.set_path(&p);
        }
        Ok(Self {
            http,
            base,
            app_id,
            key,
        })
    }

    fn path(&self, rest: &str) -> String {
        format!("/webhooks/v3/{}/{rest}", self.app_id)
    }

    /// Sends one request; any non-2xx answer is an error.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<(u16, Value), WebhooksApiError> {
        let name = method_name(&method);
        let mut url =
            self.base
                .join(path.trim_start_matches('/'))
                .map_err(|e| WebhooksApiError::Decode {
                    method: name,
                    path: path.to_owned(),
                    detail: e.to_string(),
                })?;
        url.query_pairs_mut()
            .append_pair("hapikey", self.key.expose_secret());
        let mut req = self.http.request(method, url);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| WebhooksApiError::Unreachable {
                method: name,
                path: path.to_owned(),
                detail: super::describe_error(&e.without_url()),
            })?;
        let status = resp.status().as_u16();
        let text = if resp.status().is_redirection() {
            crate::upstream::redirect_message("HubSpot", &resp)
        } else {
            crate::upstream::read_capped(resp, crate::upstream::LARGE_ANSWER)
                .await
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_else(|e| format!("({e})"))
        };
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if !(200..300).contains(&status) {
            return Err(WebhooksApiError::Status {
                method: name,
                path: path.to_owned(),
                status,
                message: error_message(&value, &text),
            });
        }
        Ok((status, value))
    }

    fn decode<T: serde::de::DeserializeOwned>(
        method: &'static str,
        path: &str,
        value: Value,
    ) -> Result<T, WebhooksApiError> {
        serde_json::from_value(value).map_err(|e| WebhooksApiError::Decode {
            method,
            path: path.to_owned(),
            detail: e.to_string(),
        })
    }

    /// Every subscription of the app, active and paused.
    pub async fn subscriptions(&self) -> Result<Vec<Existing>, WebhooksApiError> {
        let path = self.path("subscriptions");
        let (_, v) = self.call(reqwest::Method::GET, &path, None).await?;
        let list: ListBody = Self::decode("GET", &path, v)?;
        Ok(list.results.into_iter().map(Existing::from).collect())
    }

    /// The app's settings; `None` when HubSpot has none (404).
    pub async fn settings(&self) -> Result<Option<AppSettings>, WebhooksApiError> {
        let path = self.path("settings");
        match self.call(reqwest::Method::GET, &path, None).await {
            Ok((_, v)) => Ok(Some(settings_from(Self::decode("GET", &path, v)?))),
            Err(WebhooksApiError::Status { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Replaces the app's settings.
    pub async fn put_settings(&self, s: &AppSettings) -> Result<AppSettings, WebhooksApiError> {
        let path = self.path("settings");
        let body = json!({
            "targetUrl": s.target_url,
            "throttling": {"maxConcurrentRequests": s.max_concurrent_requests, "period": "SECONDLY"},
        });
        let (_, v) = self.call(reqwest::Method::PUT, &path, Some(body)).await?;
        Ok(settings_from(Self::decode("PUT", &path, v)?))
    }

    /// Creates an active subscription.
    pub async fn create(&self, key: &Key) -> Result<Existing, WebhooksApiError> {
        let path = self.path("subscriptions");
        let mut body = json!({"eventType": key.event_type, "active": true});
        if let Some(p) = &key.property_name {
            body["propertyName"] = json!(p);
        }
        let (_, v) = self.call(reqwest::Method::POST, &path, Some(body)).await?;
        Ok(Self::decode::<SubscriptionBody>("POST", &path, v)?.into())
    }

    /// Activates or pauses subscription `id`.
    pub async fn set_active(&self, id: &str, active: bool) -> Result<Existing, WebhooksApiError> {
        let path = self.path(&format!("subscriptions/{id}"));
        let body = json!({ "active": active });
        let (_, v) = self.call(reqwest::Method::PATCH, &path, Some(body)).await?;
        Ok(Self::decode::<SubscriptionBody>("PATCH", &path, v)?.into())
    }
}

fn settings_from(b: SettingsBody) -> AppSettings {
    AppSettings {
        target_url: b.target_url,
        max_concurrent_requests: b.throttling.map_or(
            domain::subscriptions::hsmeta::MAX_CONCURRENT_REQUESTS,
            |t| t.max_concurrent_requests,
        ),
    }
}

fn method_name(m: &reqwest::Method) -> &'static str {
    match *m {
        reqwest::Method::GET => "GET",
        reqwest::Method::PUT => "PUT",
        reqwest::Method::POST => "POST",
        reqwest::Method::PATCH => "PATCH",
        reqwest::Method::DELETE => "DELETE",
        _ => "request",
    }
}

/// HubSpot's error `message` with its `category`, or the answer's text.
fn error_message(v: &Value, text: &str) -> String {
    match v.get("message").and_then(Value::as_str) {
        Some(m) => match v.get("category").and_then(Value::as_str) {
            Some(c) => format!("{m} ({c})"),
            None => m.to_owned(),
        },
        None if text.trim().is_empty() => "(empty answer)".to_owned(),
        None => domain::failure::truncate(text, 500),
    }
}
