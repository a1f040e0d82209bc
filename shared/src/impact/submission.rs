//! `GET {base}/Advertisers/{SID}/APISubmissions/{BatchId}`: what became of a
//! queued submission (see docs/src/reference/impact.md).

use std::time::Instant;

use secrecy::ExposeSecret;
use serde::Deserialize;

use super::{ImpactClient, ImpactCredentials, ImpactError, budget::RateHeaders};
use domain::failure::truncate;

/// A submission's state as impact.com reports it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
pub struct SubmissionState {
    /// `Queued`, `In Progress` or `Complete`.
    #[serde(rename = "Status", alias = "status", default)]
    pub status: String,
    /// e.g. `Validation`, `Contract Error`.
    #[serde(rename = "ErrorType", alias = "errorType", default)]
    pub error_type: Option<String>,
    /// e.g. `CONV_DUPLICATE`, `CONTRACT_NOT_FOUND`.
    #[serde(rename = "ErrorReason", alias = "errorReason", default)]
    pub error_reason: Option<String>,
}

impl SubmissionState {
    /// True once impact.com has decided.
    pub fn is_complete(&self) -> bool {
        self.status.eq_ignore_ascii_case("complete")
    }

    /// The error reason, when there is a non-empty one.
    pub fn reason(&self) -> Option<&str> {
        self.error_reason
            .as_deref()
            .map(str::trim)
            .filter(|r| !r.is_empty())
    }
}

/// The path of a QueuedUri (an absolute URL is reduced to its path, so the
/// credentials only ever go to the configured base URL).
fn path_of(queued_uri: &str) -> Option<String> {
    let path = match url::Url::parse(queued_uri) {
        Ok(u) => u.path().to_owned(),
        Err(_) => queued_uri.to_owned(),
    };
    path.starts_with("/Advertisers/").then_some(path)
}

impl ImpactClient {
    /// Reads the state of the submission at `queued_uri` (as stored from the
    /// QUEUED answer). Every answer's rate-limit headers feed the budget.
    pub async fn submission_status(
        &self,
        creds: &ImpactCredentials,
        queued_uri: &str,
    ) -> Result<SubmissionState, ImpactError> {
        let Some(path) = path_of(queued_uri) else {
            return Err(ImpactError::Rejected {
                status: 0,
                body: "the stored QueuedUri is not an APISubmissions path".into(),
            });
        };
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
        let body = resp.text().await.unwrap_or_default();
        let short = truncate(&body, 500);
        match status {
            200..=299 => serde_json::from_str(&body).map_err(|_| {
                ImpactError::Unavailable(format!(
                    "{status}: the submission's state is not the documented JSON"
                ))
            }),
            401 | 403 => Err(ImpactError::Auth {
                status,
                body: short,
            }),
            402 | 429 => Err(ImpactError::RetryLater {
                status,
                body: short,
                retry_after: rate.reset,
            }),
            408 | 500..=599 => Err(ImpactError::Unavailable(format!("{status}: {short}"))),
            _ => Err(ImpactError::Rejected {
                status,
                body: short,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_parse_in_both_spellings() {
        let s: SubmissionState = serde_json::from_str(
            r#"{"BatchId":"A","Status":"Complete","ErrorType":"Contract Error","ErrorReason":"CONTRACT_NOT_FOUND"}"#,
        )
        .expect("parses");
        assert!(s.is_complete());
        assert_eq!(s.reason(), Some("CONTRACT_NOT_FOUND"));
        let q: SubmissionState =
            serde_json::from_str(r#"{"status":"Queued","errorReason":""}"#).expect("parses");
        assert!(!q.is_complete());
        assert_eq!(q.reason(), None);
    }

    #[test]
    fn only_submission_paths_are_followed() {
        assert_eq!(
            path_of("/Advertisers/IR1/APISubmissions/B1").as_deref(),
            Some("/Advertisers/IR1/APISubmissions/B1")
        );
        assert_eq!(
            path_of("https://elsewhere.example/Advertisers/IR1/APISubmissions/B1").as_deref(),
            Some("/Advertisers/IR1/APISubmissions/B1")
        );
        assert_eq!(path_of("https://elsewhere.example/steal"), None);
    }
}
