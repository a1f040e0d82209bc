//! The fault suite's reconciliation: which conversions the triggers call
//! for (from the events the fake HubSpot emitted), which the fake
//! impact.com credited, and the difference.
//!
//! The rule: a conversion is identified by (impact.com account, `OrderId`).
//! It is *delivered* when impact.com answered 200 to a post of it that it
//! did not flag `CONV_DUPLICATE`, i.e. it was credited. A further post of the
//! same conversion that impact.com flags `CONV_DUPLICATE` (a resend after a
//! crash or a timeout whose first post did get through) credits nothing:
//! it is counted as a *resend*, not as a double. A *duplicate* is a second
//! credit; a conversion never credited is *lost*.

use std::collections::{BTreeMap, HashMap, HashSet};

use sandbox::{Submission, SubmissionKind, WebhookEvent};

/// A conversion: (impact.com account, OrderId).
pub type ConversionKey = (String, String);

/// The counts a run ends with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reconciliation {
    /// Events the fake HubSpot emitted (distinct changes).
    pub events_sent: usize,
    /// Conversions the triggers call for.
    pub expected: usize,
    /// Expected conversions credited at least once.
    pub delivered: usize,
    /// Credits beyond the first, over all conversions.
    pub duplicates: usize,
    /// Expected conversions never credited.
    pub lost: usize,
    /// Credited conversions no trigger called for.
    pub unexpected: usize,
    /// Posts impact.com flagged `CONV_DUPLICATE` (nothing credited).
    pub resends: usize,
    /// Posts answered with an injected fault (429, 5xx, dropped).
    pub faulted_posts: usize,
    /// Some of the lost keys, for the report.
    pub lost_examples: Vec<ConversionKey>,
    /// Some of the doubled keys.
    pub duplicate_examples: Vec<ConversionKey>,
}

impl Reconciliation {
    /// Nothing lost, nothing doubled, nothing made up.
    pub fn passed(&self) -> bool {
        self.lost == 0 && self.duplicates == 0 && self.unexpected == 0
    }
}

/// The conversion an event calls for, given the suite's portal documents
/// (contacts fire on creation with `OrderId = hs_object_id`; deals fire on a
/// `dealstage` change with `OrderId = deal_[stage]_id`).
pub fn expected_key(event: &WebhookEvent, account: &str) -> Option<ConversionKey> {
    let order_id = match event.subscription_type.as_str() {
        "contact.creation" => event.object_id.to_string(),
        "deal.propertyChange" if event.property_name.as_deref() == Some("dealstage") => {
            format!("{}_{}", event.object_id, event.property_value.as_deref()?)
        }
        _ => return None,
    };
    Some((account.to_owned(), order_id))
}

/// Compares what was called for with what impact.com recorded (`requests`:
/// every request, faulted and rejected ones included).
pub fn reconcile(
    emitted: &[WebhookEvent],
    account_of: &HashMap<u64, String>,
    requests: &[Submission],
) -> Reconciliation {
    let expected: HashSet<ConversionKey> = emitted
        .iter()
        .filter_map(|e| expected_key(e, account_of.get(&e.portal_id)?))
        .collect();
    let mut credited: BTreeMap<ConversionKey, usize> = BTreeMap::new();
    let mut r = Reconciliation {
        events_sent: emitted.len(),
        expected: expected.len(),
        ..Reconciliation::default()
    };
    for s in requests
        .iter()
        .filter(|s| s.kind == SubmissionKind::Conversion)
    {
        if !s.accepted() {
            r.faulted_posts += usize::from(s.error.is_some() && s.http_status != 400);
            continue;
        }
        if s.is_duplicate() {
            r.resends += 1;
            continue;
        }
        let key = (
            s.account_sid.clone(),
            s.param("OrderId").unwrap_or_default().to_owned(),
        );
        *credited.entry(key).or_default() += 1;
    }
    for (key, n) in &credited {
        if *n > 1 {
            r.duplicates += n - 1;
            r.duplicate_examples.push(key.clone());
        }
        if !expected.contains(key) {
            r.unexpected += 1;
        }
    }
    let mut lost: Vec<ConversionKey> = expected
        .iter()
        .filter(|k| !credited.contains_key(*k))
        .cloned()
        .collect();
    lost.sort();
    r.delivered = expected.len() - lost.len();
    r.lost = lost.len();
    r.lost_examples = lost.into_iter().take(10).collect();
    r.duplicate_examples.truncate(10);
    r
}
