//! Reads (`GET`) from impact.com: one request, its metrics, and its
//! rate-limit headers fed to the account's budget; an answer other than 2xx
//! classified as the table of docs/src/reference/impact.md says.

use std::time::Instant;

use secrecy::ExposeSecret;

use super::{ImpactClient, ImpactCredentials, ImpactError, budget::RateHeaders};
use domain::failure::truncate;

/// A 2xx answer.
pub(crate) struct Answer {
    /// HTTP status.
    pub(crate) status: u16,
    /// The body.
    pub(crate) body: String,
}

/// The path (and query) of a URI impact.com gave us, when it stays under
/// `/Advertisers/{sid}/{resource}`: an absolute URL is reduced to its path
/// and query, so the credentials only ever go to the configured base URL.
pub(crate) fn relative(uri: &str, sid: &str, resource: &str) -> Option<String> {
    let (path, query) = match url::Url::parse(uri) {
        Ok(u) => (u.path().to_owned(), u.query().map(str::to_owned)),
        Err(_) => match uri.split_once('?') {
            Some((p, q)) => (p.to_owned(), Some(q.to_owned())),
            None => (uri.to_owned(), None),
        },
    };
    let prefix = format!("/Advertisers/{sid}/{resource}");
    let under = path == prefix || path.starts_with(&format!("{prefix}/"));
    under.then(|| match query {
        Some(q) => format!("{path}?{q}"),
        None => path,
    })
}

impl ImpactClient {
    /// `GET {base}{path}`: a 2xx answer, or the error its status means.
    pub(crate) async fn read(
        &self,
        creds: &ImpactCredentials,
        path: &str,
    ) -> Result<Answer, ImpactError> {
        let started = Instant::now();
        let result = self
            .http
            .get(format!("{}{path}", self.base))
            .basic_auth(&creds.account_sid, Some(creds.auth_token.expose_secret()))
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await;
        metrics::histogram!("impact_request_duration_seconds")
            .record(started.elapsed().as_secs_f64());
        let resp = match result {
            Ok(r) => r,
            Err(e) => {
                metrics::counter!("impact_requests_total", "status" => "error").increment(1);
                return Err(ImpactError::Unavailable(crate::hubspot::describe_error(&e)));
            }
        };
        let status = resp.status().as_u16();
        metrics::counter!("impact_requests_total", "status" => status.to_string()).increment(1);
        let rate = RateHeaders::of(resp.headers());
        self.budget.observe(&creds.account_sid, status, rate);
        if resp.status().is_redirection() {
            return Err(ImpactError::Rejected {
                status,
                body: crate::upstream::redirect_message("impact.com", &resp),
            });
        }
        let body = crate::upstream::read_capped(resp, crate::upstream::LARGE_ANSWER)
            .await
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .map_err(|e| ImpactError::Unavailable(e.to_string()))?;
        let short = || truncate(&body, 500);
        match status {
            200..=299 => Ok(Answer { status, body }),
            401 | 403 => Err(ImpactError::Auth {
                status,
                body: short(),
            }),
            402 | 429 => Err(ImpactError::RetryLater {
                status,
                body: short(),
                retry_after: rate.reset,
            }),
            408 | 500..=599 => Err(ImpactError::Unavailable(format!("{status}: {}", short()))),
            _ => Err(ImpactError::Rejected {
                status,
                body: short(),
            }),
        }
    }
}

/// A field of an impact.com object as text: impact.com writes numbers and
/// booleans as strings in many answers (`"Id": "1000"`), so both are read.
pub(crate) fn text(v: &serde_json::Value, name: &str) -> Option<String> {
    match v.get(name)? {
        serde_json::Value::String(s) => Some(s.trim().to_owned()).filter(|s| !s.is_empty()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_uris_under_the_account_resource_are_followed() {
        assert_eq!(
            relative(
                "/Advertisers/IR1/APISubmissions/B1",
                "IR1",
                "APISubmissions"
            )
            .as_deref(),
            Some("/Advertisers/IR1/APISubmissions/B1")
        );
        assert_eq!(
            relative(
                "https://elsewhere.example/Advertisers/IR1/Actions?CampaignId=1&Page=2",
                "IR1",
                "Actions"
            )
            .as_deref(),
            Some("/Advertisers/IR1/Actions?CampaignId=1&Page=2")
        );
        assert_eq!(
            relative("/Advertisers/IR2/Actions?Page=2", "IR1", "Actions"),
            None
        );
        assert_eq!(
            relative("https://elsewhere.example/steal", "IR1", "Actions"),
            None
        );
        assert_eq!(
            relative("/Advertisers/IR1/ActionsX", "IR1", "Actions"),
            None
        );
    }

    #[test]
    fn fields_are_read_as_strings_or_numbers() {
        let v =
            serde_json::json!({"Id": "1000", "Count": 3, "Flag": true, "Empty": " ", "Null": null});
        assert_eq!(text(&v, "Id").as_deref(), Some("1000"));
        assert_eq!(text(&v, "Count").as_deref(), Some("3"));
        assert_eq!(text(&v, "Flag").as_deref(), Some("true"));
        assert_eq!(text(&v, "Empty"), None);
        assert_eq!(text(&v, "Null"), None);
        assert_eq!(text(&v, "Missing"), None);
    }
}
