//! Deferred messages pulled back by a worker that runs low on work.
//!
//! A worker defers a message of a portal it holds enough of already
//! ([`super::fair`], [`super::defer`]): the message waits in the deferred
//! queue for the first retry delay, then returns to the work queue. When
//! the burst is one portal's alone, the worker drains what it holds before
//! that delay is over and would sit idle while its own deferred messages
//! wait. So a worker holding few messages takes deferred ones back
//! (`basic.get`, acknowledged after their commit like any other) up to a
//! small number, polling again while it stays low. A worker that just
//! started, or one whose portals went quiet, picks up other workers'
//! deferred messages the same way. The deferral's purpose is kept: a worker
//! pulls back only while it holds fewer messages than a portal's backlog
//! bound, so what it pulls is admitted, never deferred again, and other
//! portals' messages behind a burst are still reached at once.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use lapin::{Channel, message::Delivery, options::BasicGetOptions};
use shared::broker::Topology;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::fair::FairConfig;

/// How often a worker holding few messages looks at the deferred queue.
const POLL: Duration = Duration::from_millis(100);

/// The longest wait between two looks at an empty deferred queue.
const IDLE_POLL_MAX: Duration = Duration::from_secs(2);

/// When and how much to pull back.
#[derive(Debug)]
pub struct PullBack {
    queue: Option<String>,
    /// Pull when the worker holds fewer messages than this.
    low: usize,
    /// Pull until it holds this many.
    high: usize,
    /// The next look.
    next: Instant,
    /// The wait after a look that found nothing (doubles up to
    /// [`IDLE_POLL_MAX`]).
    idle: Duration,
}

static PULLED: AtomicU64 = AtomicU64::new(0);

/// Messages pulled back by this process so far (the
/// `worker_messages_pulled_back_total` counter).
pub fn pulled_total() -> u64 {
    PULLED.load(Ordering::Relaxed)
}

/// A pulled message with its place in the prefetch window.
pub type Pulled = (OwnedSemaphorePermit, Delivery);

impl PullBack {
    /// Pulls from `topology`'s deferred queue (never without one). A worker
    /// is low below two rounds of its message slots and refills to four,
    /// both under half its prefetch and at most a portal's backlog bound, so
    /// that a pulled message is always admitted.
    pub fn new(topology: &Topology, prefetch: usize, fair: FairConfig) -> Self {
        let slots = fair.concurrency.max(1);
        let bound = match fair.portal_backlog {
            0 => usize::MAX,
            b => b,
        };
        let high = (4 * slots).min(bound).min(prefetch / 2).max(1);
        let low = (2 * slots).min(bound / 2).min(high).max(1);
        Self {
            queue: topology.deferred_queue(),
            low,
            high,
            next: Instant::now(),
            idle: POLL,
        }
    }

    /// When to call [`Self::pull`] next; `None`: never (no deferred queue).
    pub fn due(&self) -> Option<tokio::time::Instant> {
        self.queue.as_ref().map(|_| self.next.into())
    }

    /// The messages to take back now, with their places in the prefetch
    /// window (`permits`, of which `held` are taken).
    pub async fn pull(
        &mut self,
        ch: &Channel,
        held: usize,
        permits: &Arc<Semaphore>,
    ) -> Vec<Pulled> {
        let mut got = Vec::new();
        let Some(queue) = &self.queue else {
            return got;
        };
        if held >= self.low {
            self.idle = POLL;
            self.next = Instant::now() + POLL;
            return got;
        }
        while held + got.len() < self.high {
            let Ok(permit) = permits.clone().try_acquire_owned() else {
                break;
            };
            match ch
                .basic_get(queue.as_str().into(), BasicGetOptions { no_ack: false })
                .await
            {
                Ok(Some(m)) => {
                    let last = m.message_count == 0;
                    got.push((permit, m.delivery));
                    if last {
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    // The consumer's stream ends with the channel too.
                    tracing::warn!(error = %e, "could not pull deferred messages back");
                    break;
                }
            }
        }
        if got.is_empty() {
            self.idle = (self.idle * 2).min(IDLE_POLL_MAX);
        } else {
            self.idle = POLL;
            PULLED.fetch_add(got.len() as u64, Ordering::Relaxed);
            metrics::counter!("worker_messages_pulled_back_total").increment(got.len() as u64);
        }
        self.next = Instant::now() + self.idle;
        got
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pull_back(concurrency: usize, backlog: usize, prefetch: usize) -> PullBack {
        let topology = Topology {
            prefix: String::new(),
            retry_delays: vec![Duration::from_secs(10)],
            delivery_limit: 5,
            quorum_initial_group_size: None,
        };
        let fair = FairConfig {
            concurrency,
            portal_concurrency: 1,
            portal_backlog: backlog,
        };
        PullBack::new(&topology, prefetch, fair)
    }

    #[test]
    fn the_bounds_keep_what_is_pulled_within_a_portals_backlog() {
        let p = pull_back(16, 768, 1024);
        assert_eq!((p.low, p.high), (32, 64), "the defaults");
        let p = pull_back(4, 6, 16);
        assert_eq!((p.low, p.high), (3, 6), "a small backlog bounds both");
        let p = pull_back(16, 0, 1024);
        assert_eq!((p.low, p.high), (32, 64), "no backlog bound");
        let p = pull_back(16, 768, 20);
        assert_eq!((p.low, p.high), (10, 10), "half the prefetch at most");
        let p = pull_back(1, 1, 1);
        assert_eq!((p.low, p.high), (1, 1), "never zero");
    }

    #[test]
    fn no_retry_schedule_no_pulling() {
        let topology = Topology {
            prefix: String::new(),
            retry_delays: Vec::new(),
            delivery_limit: 5,
            quorum_initial_group_size: None,
        };
        let fair = FairConfig {
            concurrency: 4,
            portal_concurrency: 1,
            portal_backlog: 8,
        };
        assert!(PullBack::new(&topology, 16, fair).due().is_none());
    }
}
