//! impact.com API client (see docs/src/reference/impact.md):
//! `POST {base}/Advertisers/{AccountSID}/Conversions`, form-encoded, Basic
//! auth; the reads that follow a submission ([`submission`], [`actions`])
//! and check the settings ([`program`]).

pub mod actions;
pub mod budget;
pub mod program;
mod read;
pub mod submission;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use domain::failure::{Failure, FailureReason, truncate};

/// An advertiser account's API credentials.
#[derive(Clone)]
pub struct ImpactCredentials {
    /// Account SID (Basic auth user name; part of the URL).
    pub account_sid: String,
    /// Auth Token (Basic auth password). Never logged.
    pub auth_token: SecretString,
}

impl std::fmt::Debug for ImpactCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImpactCredentials")
            .field("account_sid", &self.account_sid)
            .finish_non_exhaustive()
    }
}

/// impact.com accepted the conversion for processing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queued {
    /// Where the submission's final outcome can be read (`/Advertisers/{SID}/APISubmissions/{id}`).
    pub queued_uri: Option<String>,
}

/// Why a submission was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImpactError {
    /// 400, 404, 405 (and other 4xx): the request itself is wrong.
    #[error("impact.com refused the conversion ({status}): {body}")]
    Rejected {
        /// HTTP status.
        status: u16,
        /// The answer (names the offending fields).
        body: String,
    },
    /// 401, 403: bad or disabled credentials.
    #[error("impact.com refused the credentials ({status}): {body}")]
    Auth {
        /// HTTP status.
        status: u16,
        /// The answer.
        body: String,
    },
    /// 429 (or 402, "valid but failed"): try again later.
    #[error("impact.com asked to retry later ({status}): {body}")]
    RetryLater {
        /// HTTP status.
        status: u16,
        /// The answer.
        body: String,
        /// When the rate-limit window resets, if said.
        retry_after: Option<Duration>,
    },
    /// 5xx, timeout, connection error.
    #[error("impact.com unavailable: {0}")]
    Unavailable(String),
}

impl ImpactError {
    /// Transient or permanent, with a reason code (the table of impact-api.md).
    pub fn failure(&self) -> Failure {
        let detail = self.to_string();
        match self {
            Self::Rejected { status, .. } => {
                Failure::permanent(FailureReason::ImpactRejected, detail).with_status(*status)
            }
            Self::Auth { status, .. } => {
                Failure::permanent(FailureReason::ImpactAuth, detail).with_status(*status)
            }
            Self::RetryLater {
                status,
                retry_after,
                ..
            } => Failure {
                retry_after: *retry_after,
                status: Some(*status),
                ..Failure::transient(
                    if *status == 429 {
                        FailureReason::ImpactRateLimited
                    } else {
                        FailureReason::ImpactUnavailable
                    },
                    detail,
                )
            },
            Self::Unavailable(text) => {
                // "503: ..." when impact.com answered; a transport error otherwise.
                let status = text.get(..3).and_then(|s| s.parse::<u16>().ok());
                let f = Failure::transient(FailureReason::ImpactUnavailable, detail);
                match status {
                    Some(s) => f.with_status(s),
                    None => f,
                }
            }
        }
    }
}

/// An impact.com API client. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ImpactClient {
    http: reqwest::Client,
    base: String,
    /// Rate-limit headers learned from every answer, per account.
    budget: Arc<budget::ImpactBudget>,
}

impl ImpactClient {
    /// A client for `base_url` (`https://api.impact.com`, or a fake's URL).
    pub fn new(http: reqwest::Client, base_url: &str) -> Self {
        Self {
            http,
            base: base_url.trim_end_matches('/').to_owned(),
            budget: Arc::default(),
        }
    }

    /// The accounts' hourly budgets as learned from the answers.
    pub fn budget(&self) -> &budget::ImpactBudget {
        &self.budget
    }

    /// Submits one conversion; `params` are sent in order, form-encoded.
    pub async fn submit_conversion(
        &self,
        creds: &ImpactCredentials,
        params: &[(String, String)],
    ) -> Result<Queued, ImpactError> {
        self.send(reqwest::Method::POST, "Conversions", creds, params)
            .await
    }

    /// Reverses an action (`DELETE .../Actions`, `reversal`) or modifies it
    /// (`PUT .../Actions`); `form` identifies it and carries the
    /// `DispositionCode` or the `Reason` and new values. Both answer QUEUED.
    pub async fn adjust_action(
        &self,
        creds: &ImpactCredentials,
        reversal: bool,
        form: &[(String, String)],
    ) -> Result<Queued, ImpactError> {
        let method = if reversal {
            reqwest::Method::DELETE
        } else {
            reqwest::Method::PUT
        };
        self.send(method, "Actions", creds, form).await
    }

    async fn send(
        &self,
        method: reqwest::Method,
        resource: &str,
        creds: &ImpactCredentials,
        params: &[(String, String)],
    ) -> Result<Queued, ImpactError> {
        let url = format!("{}/Advertisers/{}/{resource}", self.base, creds.account_sid);
        let started = Instant::now();
        let result = self
            .http
            .request(method, url)
            .basic_auth(&creds.account_sid, Some(creds.auth_token.expose_secret()))
            .header(reqwest::header::ACCEPT, "application/json")
            .form(params)
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
        let rate = budget::RateHeaders::of(resp.headers());
        self.budget.observe(&creds.account_sid, status, rate);
        let reset = rate.reset;
        if resp.status().is_redirection() {
            return Err(ImpactError::Rejected {
                status,
                body: crate::upstream::redirect_message("impact.com", &resp),
            });
        }
        let body = crate::upstream::read_capped(resp, crate::upstream::SMALL_ANSWER)
            .await
            .map_err(|e| ImpactError::Unavailable(e.to_string()))?;
        classify(status, &String::from_utf8_lossy(&body), reset)
    }
}

/// The answer of a submission, as a result.
fn classify(status: u16, body: &str, reset: Option<Duration>) -> Result<Queued, ImpactError> {
    #[derive(Deserialize)]
    struct Answer {
        #[serde(rename = "Status", alias = "status")]
        status: Option<String>,
        #[serde(rename = "QueuedUri", alias = "queuedUri")]
        queued_uri: Option<String>,
    }
    let short = truncate(body, 2000);
    match status {
        200..=299 => {
            let answer: Option<Answer> = serde_json::from_str(body).ok();
            match answer {
                Some(a)
                    if a.status
                        .as_deref()
                        .is_some_and(|s| s.eq_ignore_ascii_case("error")) =>
                {
                    Err(ImpactError::Rejected {
                        status,
                        body: short,
                    })
                }
                Some(a) => Ok(Queued {
                    queued_uri: a.queued_uri,
                }),
                // Accepted, but not in the documented shape (e.g. XML without
                // our Accept header honoured): the action is queued all the same.
                None => Ok(Queued { queued_uri: None }),
            }
        }
        401 | 403 => Err(ImpactError::Auth {
            status,
            body: short,
        }),
        402 | 429 => Err(ImpactError::RetryLater {
            status,
            body: short,
            retry_after: reset,
        }),
        408 | 500..=599 => Err(ImpactError::Unavailable(format!("{status}: {short}"))),
        _ => Err(ImpactError::Rejected {
            status,
            body: short,
        }),
    }
}

/// `X-RateLimit-Reset` is documented as seconds until reset, but examples
/// show an epoch timestamp: accept both.
pub(crate) fn reset_delay(value: u64) -> Duration {
    if value > 1_000_000_000 {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        Duration::from_secs(value.saturating_sub(now))
    } else {
        Duration::from_secs(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::failure::FailureClass;

    #[test]
    fn answers_are_classified_as_documented() {
        let ok = classify(
            200,
            r#"{"Status":"QUEUED","QueuedUri":"/Advertisers/IR1/APISubmissions/A-1"}"#,
            None,
        );
        assert_eq!(
            ok,
            Ok(Queued {
                queued_uri: Some("/Advertisers/IR1/APISubmissions/A-1".into())
            })
        );
        let class = |s: u16| classify(s, "{}", None).expect_err("error").failure();
        for s in [400, 404, 405] {
            assert_eq!(class(s).class, FailureClass::Permanent, "{s}");
            assert_eq!(class(s).reason, "impact_rejected");
        }
        for s in [401, 403] {
            assert_eq!(class(s).reason, "impact_auth");
            assert_eq!(class(s).class, FailureClass::Permanent);
        }
        for s in [402, 429, 500, 503] {
            assert_eq!(class(s).class, FailureClass::Transient, "{s}");
        }
        let e = classify(
            200,
            r#"{"Status":"ERROR","Message":"Validation Failed"}"#,
            None,
        );
        assert!(matches!(e, Err(ImpactError::Rejected { .. })));
    }

    #[test]
    fn reset_accepts_both_readings() {
        assert_eq!(reset_delay(30), Duration::from_secs(30));
        assert!(reset_delay(4_000_000_000) > Duration::from_secs(1000));
        assert_eq!(reset_delay(1_000_000_001), Duration::ZERO);
    }
}
