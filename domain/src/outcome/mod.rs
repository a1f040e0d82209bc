//! What became of a delivered conversion at impact.com: the verdict read
//! from its API submission (`Status`, `ErrorType`, `ErrorReason`), and
//! ([`credited`]) which conversions a listing of impact.com's actions shows
//! credited without reading their submissions one by one.
//!
//! `ErrorReason` is a space-separated list of codes (impact.com's reference
//! shows `CONTRACT_NOT_FOUND RESTRICTED_PROMOCODE`); `ErrorType` is empty
//! when no error was found. So a submission is `complete` only when both
//! are empty: an `ErrorType` without a reason is still an error.

pub mod credited;

#[cfg(test)]
mod tests;

/// impact.com's reason for a repeated OrderId within an event type.
pub const CONV_DUPLICATE: &str = "CONV_DUPLICATE";

/// The `ErrorReason` codes impact.com documents (Brand API v14, API and FTP
/// submissions). Used as bounded metric labels; anything else is `other`.
pub const KNOWN_REASONS: &[&str] = &[
    "ACTION_REF_NOT_FOUND",
    "ACTIONTERMS_NOT_FOUND",
    "ACTIONTRACKER_CAMPAIGN_MISMATCH",
    "ACTIONTRACKER_NOT_ACTIVE",
    "ACTIONTRACKER_NOT_FOUND",
    "BLACKLISTED_SOURCE_IP",
    "BLOCKED_BY_PROMOCODE",
    "CALL_DUPLICATE",
    "CALL_DURATION_TOO_SHORT",
    "CALL_FOR_CALL_PER_CONV_AT",
    "CALL_INCOMPLETE",
    "CALL_OUTSIDE_DAILY_RANGE",
    "CAMPAIGN_NOT_FOUND",
    "CONTRACT_NOT_FOUND",
    "CONV_DUPLICATE",
    "CREDITING_RULE_MISMATCH",
    "MALFORMED",
    "MAX_RECURRENCES_REACHED",
    "NO_ITEM",
    "NO_VALID_ACTION_REF",
    "OID_MISSING",
    "OTHER_REF_PRIORITIZED",
    "OUTSIDE_ASSOCIATION_WINDOW",
    "PARTNER_NOT_ACTIVE",
    "REFTYPE_NOT_ACCEPTED",
    "RESTRICTED_PROMOCODE",
    "UNCLAIMED",
];

/// The verdict on a delivered conversion (`conversions.outcome`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Credited: completed without an error, or listed among the actions.
    Complete,
    /// Completed with an error: delivered, but not credited.
    Rejected,
    /// `CONV_DUPLICATE` of a conversion sent more than once: impact.com
    /// holds the earlier submission of the same OrderId.
    DuplicateResend,
    /// Given up: no verdict in time, or the submission is no longer known.
    Unknown,
}

impl Outcome {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Complete => "complete",
            Self::Rejected => "rejected",
            Self::DuplicateResend => "duplicate_resend",
            Self::Unknown => "unknown",
        }
    }
}

/// The codes of an `ErrorReason` (space-separated; none when empty).
pub fn reason_codes(reason: Option<&str>) -> Vec<&str> {
    reason
        .map(|r| r.split_whitespace().collect())
        .unwrap_or_default()
}

/// An `ErrorReason` as stored: its codes joined by one space, `None` when
/// there is no code.
pub fn normalized_reason(reason: Option<&str>) -> Option<String> {
    let codes = reason_codes(reason);
    (!codes.is_empty()).then(|| codes.join(" "))
}

/// The verdict on a `Complete` submission of a conversion sent `attempts`
/// times. A reason listing `CONV_DUPLICATE` of a conversion sent more than
/// once is our own resend (the earlier submission holds the OrderId); any
/// other reason, or an `ErrorType` with no reason, is a rejection.
pub fn verdict(error_type: Option<&str>, error_reason: Option<&str>, attempts: i32) -> Outcome {
    let codes = reason_codes(error_reason);
    let typed = error_type.is_some_and(|t| !t.trim().is_empty());
    if codes.is_empty() {
        return if typed {
            Outcome::Rejected
        } else {
            Outcome::Complete
        };
    }
    let duplicate = codes.iter().any(|c| c.eq_ignore_ascii_case(CONV_DUPLICATE));
    if duplicate && attempts > 1 {
        Outcome::DuplicateResend
    } else {
        Outcome::Rejected
    }
}

/// The bounded metric label of a verdict's reason: `none` without a code
/// (`unspecified` for a rejection without one), `CONV_DUPLICATE` for a
/// duplicate resend, otherwise the first documented code of the list, or
/// `other`.
pub fn reason_label(outcome: Outcome, reason: Option<&str>) -> &'static str {
    let codes = reason_codes(reason);
    if codes.is_empty() {
        return if outcome == Outcome::Rejected {
            "unspecified"
        } else {
            "none"
        };
    }
    if outcome == Outcome::DuplicateResend {
        return CONV_DUPLICATE;
    }
    codes
        .iter()
        .find_map(|c| KNOWN_REASONS.iter().find(|k| k.eq_ignore_ascii_case(c)))
        .copied()
        .unwrap_or("other")
}
