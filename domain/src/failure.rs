//! Failure classification: every failure is transient (retry later) or
//! permanent (record it and stop), with a stable reason code.

use std::time::Duration;

/// Whether retrying can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureClass {
    /// Timeouts, 5xx, 429, broker or database blips: retry with backoff.
    Transient,
    /// Refused input, missing configuration, deleted objects: retrying the
    /// same thing gives the same answer.
    Permanent,
}

impl FailureClass {
    /// `transient` or `permanent`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Transient => "transient",
            Self::Permanent => "permanent",
        }
    }
}

/// A classified failure. Reason codes are stable (stored, used as metric labels):
/// `mapping_incomplete`, `mapping_invalid`, `object_deleted`, `hubspot_unavailable`,
/// `hubspot_rate_limited`, `hubspot_auth`, `hubspot_rejected`, `hubspot_uninstalled`,
/// `impact_rejected`, `impact_auth`, `impact_unavailable`, `impact_rate_limited`,
/// `database_unavailable`, `secret_unreadable`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason} ({}): {detail}", class.as_str())]
pub struct Failure {
    /// Transient or permanent.
    pub class: FailureClass,
    /// Stable reason code.
    pub reason: &'static str,
    /// What happened (never contains secrets), e.g. the remote answer.
    pub detail: String,
    /// How long the remote side asked us to wait, when it said so.
    pub retry_after: Option<Duration>,
    /// The remote answer's HTTP status, when there was one (stored with dead letters).
    pub status: Option<u16>,
}

impl Failure {
    /// The database did not answer (or refused a statement): transient, the
    /// message is retried.
    pub fn database(e: impl std::fmt::Display) -> Self {
        Self::transient("database_unavailable", e.to_string())
    }

    /// A transient failure.
    pub fn transient(reason: &'static str, detail: impl Into<String>) -> Self {
        Self {
            class: FailureClass::Transient,
            reason,
            detail: detail.into(),
            retry_after: None,
            status: None,
        }
    }

    /// A permanent failure.
    pub fn permanent(reason: &'static str, detail: impl Into<String>) -> Self {
        Self {
            class: FailureClass::Permanent,
            reason,
            detail: detail.into(),
            retry_after: None,
            status: None,
        }
    }

    /// The same failure, with the remote answer's HTTP status.
    pub fn with_status(self, status: u16) -> Self {
        Self {
            status: Some(status),
            ..self
        }
    }

    /// What may be logged of the detail: a remote answer's body may echo
    /// the values sent (personal data), so only failures without one
    /// (transport, database) log their detail; the body stays in the
    /// database (conversion, dead letter), where erasure reaches it.
    pub fn loggable_detail(&self) -> &str {
        if self.status.is_some() || self.reason.starts_with("mapping_") {
            "(see the stored error)"
        } else {
            &self.detail
        }
    }

    /// True when retrying may help.
    pub fn is_transient(&self) -> bool {
        self.class == FailureClass::Transient
    }
}

/// Keeps the first `max` characters of a remote answer for storage and logs.
pub fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_owned(),
    }
}
