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

/// Why something failed: the stable code stored with event outcomes,
/// conversions, adjustments and dead letters, and used as a metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureReason {
    /// PostgreSQL did not answer or refused a statement (transient).
    DatabaseUnavailable,
    /// impact.com timed out, failed to connect or answered 5xx (transient).
    ImpactUnavailable,
    /// impact.com answered 429 (transient).
    ImpactRateLimited,
    /// impact.com refused the submission (4xx).
    ImpactRejected,
    /// impact.com refused the credentials (401/403).
    ImpactAuth,
    /// HubSpot answered 429 (transient).
    HubspotRateLimited,
    /// HubSpot timed out or answered 5xx (transient).
    HubspotUnavailable,
    /// HubSpot refused the token (transient: refreshed, then read again).
    HubspotAuth,
    /// The app was uninstalled: the refresh token was revoked.
    HubspotUninstalled,
    /// HubSpot refused the request (4xx).
    HubspotRejected,
    /// The object no longer exists in HubSpot.
    ObjectDeleted,
    /// The portal lacks its impact.com settings.
    PortalUnconfigured,
    /// A stored secret could not be decrypted.
    SecretUnreadable,
    /// A message redelivered past the work queue's delivery limit.
    PoisonMessage,
    /// A message whose body is not events.
    MalformedMessage,
    /// An event of a delivery that could not be read (ingest kept it aside).
    InvalidEvent,
    /// A reversal or modification that cannot name its action.
    AdjustmentUnidentified,
    /// An adjustment row vanished before it was sent.
    AdjustmentMissing,
    /// A delivery batch was interrupted before it answered (transient).
    DeliveryInterrupted,
    /// Another worker held the rows' delivery lease for longer than the
    /// wait (transient: the message is retried).
    DeliveryBusy,
    /// A conversion row vanished before it was sent.
    ConversionMissing,
    /// A required impact.com field has no value.
    MappingIncomplete,
    /// A mapped value is not acceptable to impact.com.
    MappingInvalid,
}

impl FailureReason {
    /// The stored code.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::DatabaseUnavailable => "database_unavailable",
            Self::ImpactUnavailable => "impact_unavailable",
            Self::ImpactRateLimited => "impact_rate_limited",
            Self::ImpactRejected => "impact_rejected",
            Self::ImpactAuth => "impact_auth",
            Self::HubspotRateLimited => "hubspot_rate_limited",
            Self::HubspotUnavailable => "hubspot_unavailable",
            Self::HubspotAuth => "hubspot_auth",
            Self::HubspotUninstalled => "hubspot_uninstalled",
            Self::HubspotRejected => "hubspot_rejected",
            Self::ObjectDeleted => "object_deleted",
            Self::PortalUnconfigured => "portal_unconfigured",
            Self::SecretUnreadable => "secret_unreadable",
            Self::PoisonMessage => "poison_message",
            Self::MalformedMessage => "malformed_message",
            Self::InvalidEvent => "invalid_event",
            Self::AdjustmentUnidentified => "adjustment_unidentified",
            Self::AdjustmentMissing => "adjustment_missing",
            Self::DeliveryInterrupted => "delivery_interrupted",
            Self::DeliveryBusy => "delivery_busy",
            Self::ConversionMissing => "conversion_missing",
            Self::MappingIncomplete => "mapping_incomplete",
            Self::MappingInvalid => "mapping_invalid",
        }
    }

    /// A mapping problem (its detail may quote the values sent).
    pub fn is_mapping(self) -> bool {
        matches!(self, Self::MappingIncomplete | Self::MappingInvalid)
    }
}

impl std::fmt::Display for FailureReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for FailureReason {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// A classified failure: transient or permanent, with its stable reason
/// ([`FailureReason`]) and what happened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason} ({}): {detail}", class.as_str())]
pub struct Failure {
    /// Transient or permanent.
    pub class: FailureClass,
    /// Stable reason code.
    pub reason: FailureReason,
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
        Self::transient(FailureReason::DatabaseUnavailable, e.to_string())
    }

    /// A transient failure.
    pub fn transient(reason: FailureReason, detail: impl Into<String>) -> Self {
        Self {
            class: FailureClass::Transient,
            reason,
            detail: detail.into(),
            retry_after: None,
            status: None,
        }
    }

    /// A permanent failure.
    pub fn permanent(reason: FailureReason, detail: impl Into<String>) -> Self {
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
        if self.status.is_some() || self.reason.is_mapping() {
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

#[cfg(test)]
mod reason_tests {
    use super::*;

    #[test]
    fn reasons_are_stored_under_distinct_stable_codes() {
        let all = [
            FailureReason::DatabaseUnavailable,
            FailureReason::ImpactUnavailable,
            FailureReason::ImpactRateLimited,
            FailureReason::ImpactRejected,
            FailureReason::ImpactAuth,
            FailureReason::HubspotRateLimited,
            FailureReason::HubspotUnavailable,
            FailureReason::HubspotAuth,
            FailureReason::HubspotUninstalled,
            FailureReason::HubspotRejected,
            FailureReason::ObjectDeleted,
            FailureReason::PortalUnconfigured,
            FailureReason::SecretUnreadable,
            FailureReason::PoisonMessage,
            FailureReason::MalformedMessage,
            FailureReason::InvalidEvent,
            FailureReason::AdjustmentUnidentified,
            FailureReason::AdjustmentMissing,
            FailureReason::DeliveryInterrupted,
            FailureReason::DeliveryBusy,
            FailureReason::ConversionMissing,
            FailureReason::MappingIncomplete,
            FailureReason::MappingInvalid,
        ];
        let codes: std::collections::BTreeSet<&str> = all.iter().map(|r| r.as_str()).collect();
        assert_eq!(codes.len(), all.len());
        assert!(
            codes
                .iter()
                .all(|c| c.chars().all(|ch| ch.is_ascii_lowercase() || ch == '_'))
        );
        assert_eq!(FailureReason::ImpactRejected, "impact_rejected");
        assert_eq!(
            FailureReason::DatabaseUnavailable.to_string(),
            "database_unavailable"
        );
        assert!(FailureReason::MappingInvalid.is_mapping());
    }
}
