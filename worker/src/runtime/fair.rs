//! Fair scheduling across portals: one portal's import burst must not delay
//! the others.
//!
//! Three bounds, per worker process:
//! - at most `portal_concurrency` messages of one portal are worked on at
//!   once, and at most `concurrency` in all; waiting messages take the free
//!   slots in arrival order (tokio's semaphores are fair), so a quiet
//!   portal's message waits behind at most a few of a noisy portal's;
//! - at most `portal_backlog` messages of one portal are held (working or
//!   waiting). The queue is shared and FIFO: without this bound a burst of
//!   thousands of messages would sit in front of every other portal's. A
//!   message over the bound is *deferred*: republished to the first retry
//!   queue with its attempt count unchanged, so it comes back after that
//!   delay, while the messages behind it are reached now. The noisy portal
//!   loses nothing: its HubSpot budget caps it anyway, and the backlog held
//!   covers more than one rate-limit window of work.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use lapin::message::Delivery;
use shared::broker::Envelope;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How many messages may be worked on and held.
#[derive(Debug, Clone, Copy)]
pub struct FairConfig {
    /// Messages worked on at once, all portals together.
    pub concurrency: usize,
    /// Messages of one portal worked on at once.
    pub portal_concurrency: usize,
    /// Messages of one portal held (0: no bound, never defer).
    pub portal_backlog: usize,
}

#[derive(Debug)]
struct PortalSlot {
    held: usize,
    working: Arc<Semaphore>,
}

/// The scheduler's state. Cheap to clone.
#[derive(Debug, Clone)]
pub struct FairGate {
    cfg: FairConfig,
    all: Arc<Semaphore>,
    portals: Arc<Mutex<HashMap<u64, PortalSlot>>>,
}

/// What to do with a delivered message.
#[derive(Debug)]
pub enum Admission {
    /// Hold it: wait for a slot with [`Ticket::start`].
    Admit(Ticket),
    /// Its portal holds enough already: defer it.
    Defer,
}

/// A held message of one portal; releases its place when dropped.
#[derive(Debug)]
pub struct Ticket {
    gate: FairGate,
    portal: u64,
    working: Arc<Semaphore>,
}

/// Slots taken by a message being worked on.
#[derive(Debug)]
pub struct Running {
    _portal: OwnedSemaphorePermit,
    _all: OwnedSemaphorePermit,
}

impl FairGate {
    /// A gate with these bounds.
    pub fn new(cfg: FairConfig) -> Self {
        Self {
            cfg,
            all: Arc::new(Semaphore::new(cfg.concurrency.max(1))),
            portals: Arc::default(),
        }
    }

    fn slot(&self) -> PortalSlot {
        PortalSlot {
            held: 0,
            working: Arc::new(Semaphore::new(self.cfg.portal_concurrency.max(1))),
        }
    }

    /// Admits or defers a message of `portal`.
    pub fn admit(&self, portal: u64) -> Admission {
        let mut portals = self.portals.lock().unwrap_or_else(|e| e.into_inner());
        let slot = portals.entry(portal).or_insert_with(|| self.slot());
        if self.cfg.portal_backlog > 0 && slot.held >= self.cfg.portal_backlog {
            return Admission::Defer;
        }
        drop(portals);
        Admission::Admit(self.admit_anyway(portal))
    }

    /// Admits a message of `portal` whatever its backlog (when it could not
    /// be deferred).
    pub fn admit_anyway(&self, portal: u64) -> Ticket {
        let mut portals = self.portals.lock().unwrap_or_else(|e| e.into_inner());
        let slot = portals.entry(portal).or_insert_with(|| self.slot());
        slot.held += 1;
        Ticket {
            gate: self.clone(),
            portal,
            working: slot.working.clone(),
        }
    }

    /// Messages of `portal` held now.
    pub fn held(&self, portal: u64) -> usize {
        let portals = self.portals.lock().unwrap_or_else(|e| e.into_inner());
        portals.get(&portal).map_or(0, |s| s.held)
    }
}

impl Ticket {
    /// The slots, if both are free now (no waiting).
    pub fn try_start(&self) -> Option<Running> {
        let portal = self.working.clone().try_acquire_owned().ok()?;
        let all = self.gate.all.clone().try_acquire_owned().ok()?;
        Some(Running {
            _portal: portal,
            _all: all,
        })
    }

    /// Waits for a slot of the portal, then one of the process.
    pub async fn start(&self) -> Running {
        // Neither semaphore is ever closed.
        let portal = self
            .working
            .clone()
            .acquire_owned()
            .await
            .expect("the portal semaphore is never closed");
        let all = self
            .gate
            .all
            .clone()
            .acquire_owned()
            .await
            .expect("the process semaphore is never closed");
        Running {
            _portal: portal,
            _all: all,
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut portals = self.gate.portals.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(slot) = portals.get_mut(&self.portal) {
            slot.held = slot.held.saturating_sub(1);
            if slot.held == 0 {
                portals.remove(&self.portal);
            }
        }
    }
}

/// The portal a message belongs to: ingest's `x-portal-id` header, else the
/// routing key `portal.{id}`; 0 when neither says.
pub fn portal_of(d: &Delivery) -> u64 {
    Envelope::read(d.properties.headers().as_ref())
        .portal
        .or_else(|| {
            d.routing_key
                .as_str()
                .strip_prefix("portal.")
                .and_then(|p| p.parse().ok())
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(concurrency: usize, portal_concurrency: usize, backlog: usize) -> FairGate {
        FairGate::new(FairConfig {
            concurrency,
            portal_concurrency,
            portal_backlog: backlog,
        })
    }

    #[test]
    fn a_portal_over_its_backlog_is_deferred_and_others_are_not() {
        let g = gate(4, 2, 3);
        let held: Vec<Ticket> = (0..3)
            .map(|_| match g.admit(1) {
                Admission::Admit(t) => t,
                Admission::Defer => panic!("within the backlog"),
            })
            .collect();
        assert!(matches!(g.admit(1), Admission::Defer));
        assert!(matches!(g.admit(2), Admission::Admit(_)), "another portal");
        drop(held);
        assert_eq!(g.held(1), 0);
        assert!(matches!(g.admit(1), Admission::Admit(_)));
    }

    #[tokio::test]
    async fn a_quiet_portal_starts_while_a_noisy_one_waits() {
        let g = gate(3, 2, 0);
        let noisy: Vec<Ticket> = (0..10)
            .map(|_| match g.admit(1) {
                Admission::Admit(t) => t,
                Admission::Defer => panic!("no backlog bound"),
            })
            .collect();
        let r1 = noisy[0].start().await;
        let r2 = noisy[1].start().await;
        // The noisy portal's third message waits for its portal's slots...
        let third = tokio::time::timeout(std::time::Duration::from_millis(50), noisy[2].start());
        assert!(third.await.is_err(), "portal concurrency is 2");
        // ...while the quiet portal's message starts at once.
        let Admission::Admit(quiet) = g.admit(2) else {
            panic!("admitted")
        };
        let started =
            tokio::time::timeout(std::time::Duration::from_millis(50), quiet.start()).await;
        assert!(started.is_ok(), "a free process slot is left for it");
        drop((r1, r2));
    }

    #[tokio::test]
    async fn try_start_takes_free_slots_and_never_waits() {
        let g = gate(2, 1, 0);
        let admit = |portal| match g.admit(portal) {
            Admission::Admit(t) => t,
            Admission::Defer => panic!("no backlog bound"),
        };
        let (a, b, c) = (admit(1), admit(1), admit(2));
        let running = a.try_start().expect("both slots free");
        assert!(b.try_start().is_none(), "its portal's slot is taken");
        let other = c.try_start().expect("another portal, a process slot left");
        assert!(admit(3).try_start().is_none(), "no process slot left");
        drop(running);
        assert!(b.try_start().is_some(), "freed");
        drop(other);
    }
}
