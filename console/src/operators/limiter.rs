//! Failed operator-token attempts, counted per client and for all clients
//! together: after `max` failures within a window a client (or, for the
//! global count, every client) is locked out until the window's lockout
//! ends. Locked out, a request is refused before its token is looked at,
//! so guessing stops rather than slows.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{Mutex, PoisonError},
    time::{Duration, Instant},
};

/// Clients tracked at once; beyond, new clients count only globally.
const MAX_CLIENTS: usize = 10_000;

/// A client: its IP address (an IPv6 address by its /64, which one host
/// usually holds whole); `None` when the peer address is unknown.
pub type ClientKey = Option<IpAddr>;

/// The key of peer address `ip`.
pub fn client_key(ip: Option<IpAddr>) -> ClientKey {
    ip.map(|ip| match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
        v4 => v4,
    })
}

/// Which count locked the request out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// This client's failures.
    Client,
    /// Every client's failures together.
    Global,
}

impl Scope {
    /// Metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Client => "client",
            Self::Global => "global",
        }
    }
}

/// The limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Failures of one client per window.
    pub per_client: u32,
    /// Failures of all clients per window.
    pub global: u32,
    /// The window, and the lockout once a limit is reached.
    pub window: Duration,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    failures: u32,
    locked_until: Option<Instant>,
}

impl Window {
    fn new(now: Instant) -> Self {
        Self {
            start: now,
            failures: 0,
            locked_until: None,
        }
    }

    /// Remaining lockout at `now`; an ended window or lockout starts afresh.
    fn locked(&mut self, now: Instant, window: Duration) -> Option<Duration> {
        match self.locked_until {
            Some(until) if until > now => return Some(until - now),
            Some(_) => *self = Self::new(now),
            None if now.duration_since(self.start) >= window => *self = Self::new(now),
            None => {}
        }
        None
    }

    /// Counts a failure; true when it starts a lockout.
    fn fail(&mut self, now: Instant, max: u32, window: Duration) -> bool {
        let _ = self.locked(now, window);
        self.failures = self.failures.saturating_add(1);
        if self.failures >= max && self.locked_until.is_none() {
            self.locked_until = Some(now + window);
            return true;
        }
        false
    }

    fn stale(&self, now: Instant, window: Duration) -> bool {
        self.locked_until.map_or_else(
            || now.duration_since(self.start) >= window,
            |until| until <= now,
        )
    }
}

/// Counts failures; cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct FailureLimiter {
    limits: Limits,
    clients: Mutex<HashMap<ClientKey, Window>>,
    global: Mutex<Window>,
}

impl FailureLimiter {
    /// A limiter with `limits`.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            clients: Mutex::default(),
            global: Mutex::new(Window::new(Instant::now())),
        }
    }

    /// The limits.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// How long `client` is still locked out at `now`, and by which count.
    pub fn locked(&self, client: ClientKey, now: Instant) -> Option<(Duration, Scope)> {
        let w = self.limits.window;
        if let Some(left) = self
            .global
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .locked(now, w)
        {
            return Some((left, Scope::Global));
        }
        let mut clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        clients
            .get_mut(&client)
            .and_then(|c| c.locked(now, w))
            .map(|left| (left, Scope::Client))
    }

    /// Counts a failed attempt of `client` at `now`; returns the lockouts
    /// it started.
    pub fn fail(&self, client: ClientKey, now: Instant) -> Vec<Scope> {
        let Limits {
            per_client,
            global,
            window,
        } = self.limits;
        let mut started = Vec::new();
        if self
            .global
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .fail(now, global, window)
        {
            started.push(Scope::Global);
        }
        let mut clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        if !clients.contains_key(&client) && clients.len() >= MAX_CLIENTS {
            clients.retain(|_, c| !c.stale(now, window));
        }
        if clients.contains_key(&client) || clients.len() < MAX_CLIENTS {
            let entry = clients.entry(client).or_insert_with(|| Window::new(now));
            if entry.fail(now, per_client, window) {
                started.push(Scope::Client);
            }
        }
        started
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> ClientKey {
        client_key(s.parse().ok())
    }

    fn limiter(per_client: u32, global: u32) -> FailureLimiter {
        FailureLimiter::new(Limits {
            per_client,
            global,
            window: Duration::from_secs(60),
        })
    }

    #[test]
    fn a_client_is_locked_out_after_its_failures_until_the_lockout_ends() {
        let l = limiter(3, 100);
        let t = Instant::now();
        let a = ip("10.0.0.1");
        assert!(l.fail(a, t).is_empty());
        assert!(l.fail(a, t).is_empty());
        assert_eq!(l.locked(a, t), None);
        assert_eq!(l.fail(a, t), [Scope::Client]);
        let (left, scope) = l.locked(a, t + Duration::from_secs(10)).expect("locked");
        assert_eq!((left, scope), (Duration::from_secs(50), Scope::Client));
        // Another client is not concerned.
        assert_eq!(l.locked(ip("10.0.0.2"), t), None);
        // The lockout ends; the count starts afresh.
        let later = t + Duration::from_secs(60);
        assert_eq!(l.locked(a, later), None);
        assert!(l.fail(a, later).is_empty());
    }

    #[test]
    fn failures_outside_the_window_are_forgotten() {
        let l = limiter(2, 100);
        let t = Instant::now();
        let a = ip("10.0.0.1");
        assert!(l.fail(a, t).is_empty());
        assert!(l.fail(a, t + Duration::from_secs(61)).is_empty());
        assert_eq!(l.locked(a, t + Duration::from_secs(62)), None);
    }

    #[test]
    fn the_global_count_locks_out_every_client() {
        let l = limiter(100, 3);
        let t = Instant::now();
        for i in 0..3 {
            l.fail(ip(&format!("10.0.0.{i}")), t);
        }
        let (_, scope) = l.locked(ip("192.168.1.1"), t).expect("global lockout");
        assert_eq!(scope, Scope::Global);
        assert_eq!(l.locked(None, t + Duration::from_secs(60)), None);
    }

    #[test]
    fn an_ipv6_client_is_keyed_by_its_64_and_a_mapped_ipv4_as_ipv4() {
        assert_eq!(ip("2001:db8:1:2:aaaa::1"), ip("2001:db8:1:2:bbbb::2"));
        assert_ne!(ip("2001:db8:1:2::1"), ip("2001:db8:1:3::1"));
        assert_eq!(ip("::ffff:10.0.0.1"), ip("10.0.0.1"));
    }

    #[test]
    fn the_client_table_is_bounded() {
        let l = limiter(5, u32::MAX);
        let t = Instant::now();
        for i in 0..(MAX_CLIENTS as u32 + 50) {
            l.fail(Some(IpAddr::V4(std::net::Ipv4Addr::from(i))), t);
        }
        let n = l
            .clients
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        assert_eq!(n, MAX_CLIENTS);
    }
}
