//! Which delivered conversions a listing of impact.com's actions
//! (`GET /Advertisers/{SID}/Actions`) shows credited.
//!
//! An action is a conversion impact.com credited to a partner; a submission
//! completed with an error never becomes one. So a conversion whose action
//! is listed is `complete` without reading its submission, and only the
//! others (rejected, or still being processed) need their own read.
//!
//! An action stands for a conversion when it is in the same program
//! (`CampaignId`), has the same OrderId (`Oid`) and event type (its
//! `ActionTrackerId` for a conversion sent with `ActionTrackerId` or
//! `EventTypeId`, its `EventCode` for one sent with `EventTypeCode`), was
//! created no earlier than the conversion was recorded (less a clock
//! `slack`: an older action of the same OrderId is not ours), and is not
//! reversed. An action that fits several undecided conversions (the same
//! OrderId sent from two portals into one account) decides none of them:
//! their submissions say which one impact.com took.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};

/// How a conversion named its event type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventRef {
    /// `ActionTrackerId` or `EventTypeId` (the same id).
    Tracker(String),
    /// `EventTypeCode`.
    Code(String),
}

impl EventRef {
    /// From a conversion's parameters, in impact.com's order of precedence.
    pub fn of(params: &[(String, String)]) -> Option<Self> {
        let get = |name: &str| {
            params
                .iter()
                .find(|(k, v)| k == name && !v.trim().is_empty())
                .map(|(_, v)| v.trim().to_owned())
        };
        get("ActionTrackerId")
            .or_else(|| get("EventTypeId"))
            .map(Self::Tracker)
            .or_else(|| get("EventTypeCode").map(Self::Code))
    }
}

/// A delivered conversion without a verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// Conversion id.
    pub id: i64,
    /// The `CampaignId` sent.
    pub campaign_id: String,
    /// The `OrderId` sent.
    pub order_id: String,
    /// The event type sent.
    pub event: EventRef,
    /// When the conversion was recorded (before its first delivery attempt).
    pub recorded_at: DateTime<Utc>,
}

/// One action of a listing, as far as matching needs it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListedAction {
    /// `CampaignId`.
    pub campaign_id: String,
    /// `Oid`: the OrderId.
    pub order_id: String,
    /// `ActionTrackerId`.
    pub tracker_id: Option<String>,
    /// `EventCode` (the event type's code, when it has one).
    pub event_code: Option<String>,
    /// `State`: `PENDING`, `APPROVED`, `REVERSED`.
    pub state: Option<String>,
    /// `CreationDate`.
    pub created_at: Option<DateTime<Utc>>,
}

impl ListedAction {
    fn stands_for(&self, p: &Pending, slack: Duration) -> bool {
        let event = match &p.event {
            EventRef::Tracker(t) => self.tracker_id.as_deref().map(str::trim) == Some(t.as_str()),
            EventRef::Code(c) => self
                .event_code
                .as_deref()
                .is_some_and(|e| e.trim().eq_ignore_ascii_case(c)),
        };
        event
            && self.campaign_id.trim() == p.campaign_id.trim()
            && self.order_id == p.order_id
            && !self
                .state
                .as_deref()
                .is_some_and(|s| s.eq_ignore_ascii_case("REVERSED"))
            && self.created_at.is_some_and(|t| t >= p.recorded_at - slack)
    }
}

/// The ids of the `pending` conversions that `actions` show credited.
pub fn credited(pending: &[Pending], actions: &[ListedAction], slack: Duration) -> Vec<i64> {
    let mut by_order: HashMap<&str, Vec<&Pending>> = HashMap::new();
    for p in pending {
        by_order.entry(p.order_id.as_str()).or_default().push(p);
    }
    let mut matched: Vec<i64> = Vec::new();
    let mut ambiguous: HashSet<i64> = HashSet::new();
    for a in actions {
        let Some(candidates) = by_order.get(a.order_id.as_str()) else {
            continue;
        };
        let fits: Vec<i64> = candidates
            .iter()
            .filter(|p| a.stands_for(p, slack))
            .map(|p| p.id)
            .collect();
        match fits.as_slice() {
            [] => {}
            [one] => matched.push(*one),
            many => ambiguous.extend(many.iter().copied()),
        }
    }
    matched.sort_unstable();
    matched.dedup();
    matched.retain(|id| !ambiguous.contains(id));
    matched
}
