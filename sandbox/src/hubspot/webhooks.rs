//! The webhook delivery engine: HubSpot-shaped events, batched per portal,
//! signed (v1 and v3), at most `max_in_flight` requests per portal, retried
//! on non-2xx, timeouts and connection errors.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio_util::sync::CancellationToken;

pub use super::events::{AssociationChange, DeliveryOptions, WebhookEvent, WebhookStats};
use super::signing;
use crate::{WebhookTarget, lock};

#[derive(Default)]
struct PortalQueue {
    events: VecDeque<WebhookEvent>,
    dispatching: bool,
    in_flight: usize,
    sem: Option<(usize, Arc<Semaphore>)>,
}

#[derive(Default)]
struct Log {
    emitted: Vec<WebhookEvent>,
    delivered: Vec<WebhookEvent>,
    gave_up: Vec<WebhookEvent>,
}

/// Delivery timing.
#[derive(Debug, Clone)]
pub(crate) struct Timing {
    pub(crate) timeout: Duration,
    pub(crate) retry_delays: Vec<Duration>,
}

pub(crate) struct Engine {
    target: std::sync::Mutex<Option<WebhookTarget>>,
    options: std::sync::Mutex<DeliveryOptions>,
    timing: std::sync::Mutex<Timing>,
    queues: std::sync::Mutex<HashMap<u64, PortalQueue>>,
    pending: watch::Sender<usize>,
    log: std::sync::Mutex<Log>,
    stats: std::sync::Mutex<WebhookStats>,
    client: reqwest::Client,
    next_event_id: AtomicU64,
    rng: std::sync::Mutex<StdRng>,
    cancel: CancellationToken,
}

impl Engine {
    pub(crate) fn new(target: Option<WebhookTarget>, timing: Timing, seed: u64) -> Arc<Engine> {
        install_crypto_provider();
        Arc::new(Engine {
            target: std::sync::Mutex::new(target),
            options: Default::default(),
            timing: std::sync::Mutex::new(timing),
            queues: Default::default(),
            pending: watch::channel(0).0,
            log: Default::default(),
            stats: Default::default(),
            client: reqwest::Client::builder()
                .user_agent("HubSpot Connect 2.0 (http://dev.hubspot.com/) - WebhooksExecutorDaemon-executor")
                .build()
                .unwrap_or_default(),
            next_event_id: AtomicU64::new(100),
            rng: std::sync::Mutex::new(StdRng::seed_from_u64(seed)),
            cancel: CancellationToken::new(),
        })
    }

    pub(crate) fn set_target(&self, target: Option<WebhookTarget>) {
        *lock(&self.target) = target;
        for q in lock(&self.queues).values_mut() {
            q.sem = None;
        }
    }

    pub(crate) fn target(&self) -> Option<WebhookTarget> {
        lock(&self.target).clone()
    }

    pub(crate) fn set_options(&self, options: DeliveryOptions) {
        *lock(&self.options) = options;
    }

    pub(crate) fn set_timing(&self, timing: Timing) {
        *lock(&self.timing) = timing;
    }

    pub(crate) fn app_id(&self) -> u64 {
        lock(&self.target).as_ref().map_or(0, |t| t.app_id)
    }

    pub(crate) fn next_event_id(&self) -> u64 {
        self.next_event_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Counts changes no active subscription covered (nothing is sent for them).
    pub(crate) fn count_unsubscribed(&self, n: u64) {
        if n > 0 {
            lock(&self.stats).unsubscribed += n;
        }
    }

    pub(crate) fn stats(&self) -> WebhookStats {
        let mut s = lock(&self.stats).clone();
        s.pending = *self.pending.borrow();
        s
    }

    pub(crate) fn emitted(&self) -> Vec<WebhookEvent> {
        lock(&self.log).emitted.clone()
    }

    pub(crate) fn delivered(&self) -> Vec<WebhookEvent> {
        lock(&self.log).delivered.clone()
    }

    pub(crate) fn gave_up(&self) -> Vec<WebhookEvent> {
        lock(&self.log).gave_up.clone()
    }

    /// Waits until nothing is queued, in flight or waiting for a retry.
    pub(crate) async fn wait_idle(&self) {
        let mut rx = self.pending.subscribe();
        let _ = rx.wait_for(|n| *n == 0).await;
    }

    pub(crate) fn shutdown(&self) {
        self.cancel.cancel();
    }

    /// New events from changes: logged, then delivered with the current
    /// duplicate / ordering options.
    /// Events of portals in `silent` (the app is uninstalled there) are
    /// logged but not delivered, as HubSpot stops sending them.
    pub(crate) fn emit(self: &Arc<Self>, events: Vec<WebhookEvent>, silent: &[u64]) {
        if events.is_empty() {
            return;
        }
        lock(&self.stats).emitted += events.len() as u64;
        lock(&self.log).emitted.extend(events.iter().cloned());
        let (events, muted): (Vec<_>, Vec<_>) = events
            .into_iter()
            .partition(|e| !silent.contains(&e.portal_id));
        lock(&self.stats).undeliverable += muted.len() as u64;
        let options = lock(&self.options).clone();
        let mut list = events.clone();
        {
            let mut rng = lock(&self.rng);
            if options.duplicate_share > 0.0 {
                let share = options.duplicate_share.clamp(0.0, 1.0);
                list.extend(events.iter().filter(|_| rng.random_bool(share)).cloned());
            }
            if options.out_of_order {
                list.shuffle(&mut *rng);
            }
        }
        self.enqueue(list);
    }

    /// Queues events for delivery as they are (used for redeliveries too).
    pub(crate) fn enqueue(self: &Arc<Self>, events: Vec<WebhookEvent>) {
        if self.target().is_none() {
            lock(&self.stats).undeliverable += events.len() as u64;
            return;
        }
        let n = events.len();
        self.pending.send_modify(|p| *p += n);
        let mut start = Vec::new();
        {
            let mut queues = lock(&self.queues);
            for mut event in events {
                event.attempt_number = 0;
                let q = queues.entry(event.portal_id).or_default();
                q.events.push_back(event.clone());
                if !q.dispatching {
                    q.dispatching = true;
                    start.push(event.portal_id);
                }
            }
        }
        for portal in start {
            tokio::spawn(self.clone().dispatch(portal));
        }
    }

    fn finish(&self, n: usize) {
        self.pending.send_modify(|p| *p = p.saturating_sub(n));
    }

    fn semaphore(&self, portal: u64, size: usize) -> Arc<Semaphore> {
        let mut queues = lock(&self.queues);
        let q = queues.entry(portal).or_default();
        match &q.sem {
            Some((s, sem)) if *s == size => sem.clone(),
            _ => {
                let sem = Arc::new(Semaphore::new(size.max(1)));
                q.sem = Some((size, sem.clone()));
                sem
            }
        }
    }

    async fn dispatch(self: Arc<Self>, portal: u64) {
        loop {
            let Some(target) = self.target() else {
                let dropped = {
                    let mut queues = lock(&self.queues);
                    let q = queues.entry(portal).or_default();
                    q.dispatching = false;
                    q.events.drain(..).count()
                };
                lock(&self.stats).undeliverable += dropped as u64;
                self.finish(dropped);
                return;
            };
            let sem = self.semaphore(portal, target.max_in_flight);
            let permit = tokio::select! {
                p = sem.acquire_owned() => p.ok(),
                _ = self.cancel.cancelled() => return,
            };
            let batch: Vec<WebhookEvent> = {
                let mut queues = lock(&self.queues);
                let q = queues.entry(portal).or_default();
                if q.events.is_empty() {
                    q.dispatching = false;
                    return;
                }
                let n = q.events.len().min(target.batch_size.max(1));
                q.events.drain(..n).collect()
            };
            tokio::spawn(self.clone().deliver(portal, target, batch, permit));
        }
    }

    async fn deliver(
        self: Arc<Self>,
        portal: u64,
        target: WebhookTarget,
        mut batch: Vec<WebhookEvent>,
        mut permit: Option<OwnedSemaphorePermit>,
    ) {
        let timing = lock(&self.timing).clone();
        let mut attempt: u32 = 0;
        loop {
            let held = match permit.take() {
                Some(p) => Some(p),
                None => {
                    let sem = self.semaphore(portal, target.max_in_flight);
                    tokio::select! {
                        p = sem.acquire_owned() => p.ok(),
                        _ = self.cancel.cancelled() => return,
                    }
                }
            };
            for e in &mut batch {
                e.attempt_number = attempt;
            }
            let ok = self.post(portal, &target, &batch, timing.timeout).await;
            drop(held);
            if ok {
                let mut stats = lock(&self.stats);
                stats.delivered_batches += 1;
                stats.delivered_events += batch.len() as u64;
                drop(stats);
                lock(&self.log).delivered.extend(batch.iter().cloned());
                break;
            }
            lock(&self.stats).failed_attempts += 1;
            let Some(delay) = timing.retry_delays.get(attempt as usize) else {
                lock(&self.stats).gave_up_events += batch.len() as u64;
                lock(&self.log).gave_up.extend(batch.iter().cloned());
                break;
            };
            tokio::select! {
                _ = tokio::time::sleep(*delay) => {}
                _ = self.cancel.cancelled() => return,
            }
            attempt += 1;
        }
        self.finish(batch.len());
    }

    /// One signed POST; true on 2xx within the timeout.
    async fn post(
        &self,
        portal: u64,
        target: &WebhookTarget,
        batch: &[WebhookEvent],
        timeout: Duration,
    ) -> bool {
        let Ok(body) = serde_json::to_vec(batch) else {
            return false;
        };
        let now = chrono::Utc::now().timestamp_millis();
        // A private app signs with its own secret, the public app with its.
        let secret = target
            .portal_secrets
            .get(&portal)
            .unwrap_or(&target.client_secret);
        let sig = signing::sign(secret, &target.url, &body, now);
        {
            let mut queues = lock(&self.queues);
            let q = queues.entry(portal).or_default();
            q.in_flight += 1;
            let mut stats = lock(&self.stats);
            stats.requests += 1;
            stats.max_in_flight_seen = stats.max_in_flight_seen.max(q.in_flight);
        }
        let result = self
            .client
            .post(&target.url)
            .timeout(timeout)
            .header("Content-Type", "application/json")
            .header("X-HubSpot-Signature", &sig.v1)
            .header("X-HubSpot-Signature-Version", "v1")
            .header("X-HubSpot-Signature-v3", &sig.v3)
            .header("X-HubSpot-Request-Timestamp", &sig.timestamp_ms)
            .body(body)
            .send()
            .await;
        // Read the whole answer, as the timeout covers it too.
        let ok = match result {
            Ok(resp) => {
                let success = resp.status().is_success();
                resp.bytes().await.is_ok() && success
            }
            Err(_) => false,
        };
        lock(&self.queues).entry(portal).or_default().in_flight -= 1;
        ok
    }
}

/// reqwest is built without a rustls crypto provider of its own (the
/// workspace uses `ring`): the process's default must be installed before
/// the first client is built. An already installed one is kept.
fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}
