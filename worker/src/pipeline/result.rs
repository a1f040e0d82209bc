//! How an event ended.

use domain::failure::Failure;

/// How an event ended. Every variant is committed before it is returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventResult {
    /// Seen before (same identity): nothing done.
    Duplicate,
    /// Portal unknown, paused, uninstalled or unconfigured (the reason).
    Skipped(&'static str),
    /// No trigger fired (the reason).
    Ignored(&'static str),
    /// A permanent failure, recorded with its reason.
    Failed(Failure),
    /// impact.com queued the conversion.
    Delivered {
        /// The conversion row.
        conversion_id: i64,
        /// impact.com's submission URI.
        queued_uri: Option<String>,
    },
    /// The conversion's key was delivered before (by another event): not sent again.
    AlreadyDelivered {
        /// The conversion row.
        conversion_id: i64,
    },
    /// No trigger fired, but the adjustment rules matched (reversal or
    /// modification of the object's delivered conversions).
    Adjusted {
        /// `reversal` or `modification`.
        kind: &'static str,
        /// `reversed`, `modified`, or why nothing was sent.
        reason: &'static str,
        /// Adjustments impact.com queued.
        sent: usize,
    },
}

impl EventResult {
    /// Metric label.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Duplicate => "duplicate",
            Self::Skipped(_) => "skipped",
            Self::Ignored(_) => "ignored",
            Self::Failed(_) => "failed",
            Self::Delivered { .. } => "delivered",
            Self::AlreadyDelivered { .. } => "already_delivered",
            Self::Adjusted { .. } => "adjusted",
        }
    }

    /// The reason label of `worker_events_total` (empty when none).
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Skipped(reason) | Self::Ignored(reason) => reason,
            Self::Adjusted { reason, .. } => reason,
            Self::Failed(f) => f.reason.as_str(),
            _ => "",
        }
    }
}
