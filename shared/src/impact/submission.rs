//! `GET {base}/Advertisers/{SID}/APISubmissions/{BatchId}`: what became of a
//! queued submission (see docs/src/reference/impact.md).

use serde::Deserialize;

use super::{ImpactClient, ImpactCredentials, ImpactError};

/// A submission's state as impact.com reports it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
pub struct SubmissionState {
    /// `Queued`, `In Progress` or `Complete`.
    #[serde(rename = "Status", alias = "status", default)]
    pub status: String,
    /// e.g. `Validation`, `Contract Error`.
    #[serde(rename = "ErrorType", alias = "errorType", default)]
    pub error_type: Option<String>,
    /// A space-separated list of codes, e.g. `CONV_DUPLICATE`,
    /// `CONTRACT_NOT_FOUND RESTRICTED_PROMOCODE`.
    #[serde(rename = "ErrorReason", alias = "errorReason", default)]
    pub error_reason: Option<String>,
}

impl SubmissionState {
    /// True once impact.com has decided.
    pub fn is_complete(&self) -> bool {
        self.status.eq_ignore_ascii_case("complete")
    }

    /// The error reason, when there is a non-empty one: its codes
    /// (space-separated) joined by one space.
    pub fn reason(&self) -> Option<String> {
        domain::outcome::normalized_reason(self.error_reason.as_deref())
    }

    /// The error type, when there is a non-empty one.
    pub fn error_type(&self) -> Option<&str> {
        self.error_type
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
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
        let answer = self.read(creds, &path).await?;
        serde_json::from_str(&answer.body).map_err(|_| {
            ImpactError::Unavailable(format!(
                "{}: the submission's state is not the documented JSON",
                answer.status
            ))
        })
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
        assert_eq!(s.reason().as_deref(), Some("CONTRACT_NOT_FOUND"));
        let q: SubmissionState =
            serde_json::from_str(r#"{"status":"Queued","errorReason":""}"#).expect("parses");
        assert!(!q.is_complete());
        assert_eq!(q.reason(), None);
        let both: SubmissionState = serde_json::from_str(
            r#"{"Status":"Complete","ErrorType":"Validation","ErrorReason":"CONTRACT_NOT_FOUND  RESTRICTED_PROMOCODE"}"#,
        )
        .expect("parses");
        assert_eq!(
            both.reason().as_deref(),
            Some("CONTRACT_NOT_FOUND RESTRICTED_PROMOCODE")
        );
        let typed: SubmissionState = serde_json::from_str(
            r#"{"Status":"Complete","ErrorType":"Validation","ErrorReason":null}"#,
        )
        .expect("parses");
        assert_eq!(
            (typed.error_type(), typed.reason()),
            (Some("Validation"), None)
        );
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
