//! What a replay reports, and how it is audited.

use domain::events::{HubSpotEvent, PortalId, decode_message};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use shared::db::{
    self,
    dead_letters::{DeadLetter, DeadLetterId},
};

use crate::Worker;

/// How to replay.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ReplayMode {
    /// Show what would be sent; change nothing.
    pub dry_run: bool,
    /// Resend the stored payload instead of re-evaluating.
    pub as_sent: bool,
    /// Send even a conversion that was delivered already.
    pub force: bool,
}

/// How one replay ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplayOutcome {
    /// impact.com queued the conversion.
    Delivered,
    /// The conversion was delivered before: refused (use `force`).
    AlreadyDelivered,
    /// Failed again, for good (a new dead letter holds the new error).
    Failed,
    /// Failed transiently: the dead letter stays open.
    Retry,
    /// The events no longer convert (e.g. trigger disabled, portal paused).
    NothingToSend,
    /// Not open (replayed, discarded, or being replayed by someone else).
    NotOpen,
    /// No such dead letter.
    NotFound,
    /// Of a kind that cannot be replayed (an `invalid` event): discard it.
    NotReplayable,
    /// Dry run: nothing done.
    DryRun,
}

impl ReplayOutcome {
    /// The label stored in the audit log.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::AlreadyDelivered => "already_delivered",
            Self::Failed => "failed",
            Self::Retry => "retry",
            Self::NothingToSend => "nothing_to_send",
            Self::NotOpen => "not_open",
            Self::NotFound => "not_found",
            Self::NotReplayable => "not_replayable",
            Self::DryRun => "dry_run",
        }
    }

    /// True when something was sent to impact.com and queued.
    pub fn sent(self) -> bool {
        self == Self::Delivered
    }
}

/// One replay's report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReplayReport {
    /// The dead letter.
    pub id: DeadLetterId,
    /// How it ended.
    pub outcome: ReplayOutcome,
    /// Why, in words.
    pub detail: String,
    /// Dry runs: what would be sent, per event (or the stored payload).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preview: Option<Value>,
}

/// A report without preview.
pub(super) fn report(
    id: DeadLetterId,
    outcome: ReplayOutcome,
    detail: impl Into<String>,
) -> ReplayReport {
    ReplayReport {
        id,
        outcome,
        detail: detail.into(),
        preview: None,
    }
}

pub(super) fn events_of(letter: &DeadLetter) -> Result<Vec<HubSpotEvent>, serde_json::Error> {
    decode_message(&serde_json::to_vec(&letter.events)?)
}

pub(super) fn portal_of(letter: &DeadLetter) -> Option<PortalId> {
    letter
        .portal_id
        .and_then(|p| u64::try_from(p).ok())
        .map(PortalId)
}

/// Writes a replay to the audit log.
pub(super) async fn audit(
    w: &Worker,
    letter: &DeadLetter,
    actor: &str,
    mode: ReplayMode,
    r: &ReplayReport,
) -> Result<(), sqlx::Error> {
    let detail = json!({ "dead_letter": letter.id, "as_sent": mode.as_sent, "force": mode.force, "detail": r.detail });
    db::audit::record(
        &w.pool,
        letter.portal_id,
        actor,
        "dead_letter.replay",
        &detail,
        r.outcome.as_str(),
    )
    .await
}
