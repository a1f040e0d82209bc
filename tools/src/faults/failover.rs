//! How long a cluster run takes to recover from the loss of the work
//! queue's leader: the time from the kill to the first conversion credited
//! after it, and to the first conversion of an event HubSpot emitted after
//! it (the whole path again: ingest publishes with a confirm, the new
//! leader queues, a worker consumes); and ingest's refusals meanwhile.

use std::{
    collections::{HashMap, HashSet},
    time::{Duration, Instant},
};

use sandbox::{FakeHubSpot, FakeImpact};

use super::reconcile::{ConversionKey, expected_key};

/// Longest wait for the recovery.
const LIMIT: Duration = Duration::from_secs(300);

/// What was counted at the kill.
pub(super) struct Before {
    emitted: usize,
    conversions: usize,
    failed_attempts: u64,
    at: Instant,
}

impl Before {
    /// Counts now (just before the kill).
    pub(super) fn now(hs: &FakeHubSpot, imp: &FakeImpact) -> Self {
        Self {
            emitted: hs.emitted_events().len(),
            conversions: imp.conversions().len(),
            failed_attempts: hs.webhook_stats().failed_attempts,
            at: Instant::now(),
        }
    }
}

/// The recovery's figures.
#[derive(Debug, Clone, Copy, Default)]
pub struct Failover {
    /// Kill → first conversion credited after it (a worker may finish
    /// messages it held).
    pub first_conversion: Option<Duration>,
    /// Kill → first conversion of an event emitted after the kill.
    pub new_event_conversion: Option<Duration>,
    /// Webhook requests ingest refused (503) or that failed between the
    /// kill and that conversion.
    pub webhook_failures: u64,
}

/// Watches until a conversion of an event emitted after the kill is credited.
pub(super) async fn watch(
    hs: FakeHubSpot,
    imp: FakeImpact,
    account_of: HashMap<u64, String>,
    before: Before,
) -> Failover {
    let mut f = Failover::default();
    while before.at.elapsed() < LIMIT {
        let conversions = imp.conversions();
        if f.first_conversion.is_none() && conversions.len() > before.conversions {
            f.first_conversion = Some(before.at.elapsed());
        }
        let emitted = hs.emitted_events();
        let fresh: HashSet<ConversionKey> = emitted
            .get(before.emitted..)
            .unwrap_or_default()
            .iter()
            .filter_map(|e| expected_key(e, account_of.get(&e.portal_id)?))
            .collect();
        let done = conversions.iter().skip(before.conversions).any(|s| {
            fresh.contains(&(
                s.account_sid.clone(),
                s.param("OrderId").unwrap_or_default().to_owned(),
            ))
        });
        if done {
            f.new_event_conversion = Some(before.at.elapsed());
            f.webhook_failures = hs
                .webhook_stats()
                .failed_attempts
                .saturating_sub(before.failed_attempts);
            return f;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    f
}
