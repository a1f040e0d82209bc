//! Operators' browser sessions: a random id in a cookie, the session (the
//! operator token's name, its CSRF token, its expiry) kept in memory under
//! the id's SHA-256. Logging out forgets it; a console restart forgets all
//! of them (operators log in again). The token itself is never stored.
//!
//! The cookie is `HttpOnly`, `SameSite=Strict`, `Path=/`; when the admin
//! listener's public URL (`CONNECTOR_ADMIN_PUBLIC_URL`) is https it is
//! `Secure` with the `__Host-` name prefix, as the website's are.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use axum::http::HeaderMap;
use sha2::{Digest, Sha256};

use crate::web::session::{cookie, random_token, same};

/// How long an operator's session lasts.
pub const SESSION_TTL: Duration = Duration::from_secs(8 * 3600);
/// At most this many live sessions (the oldest is dropped first).
const MAX_SESSIONS: usize = 1000;

/// One operator's session.
#[derive(Debug, Clone)]
pub struct OpSession {
    /// The operator token's name (the audit log's actor is `admin:<name>`).
    pub name: String,
    /// The CSRF token every form of the session carries.
    pub csrf: String,
    expires: Instant,
}

impl OpSession {
    /// The audit log's actor.
    pub fn actor(&self) -> String {
        format!("admin:{}", self.name)
    }

    /// Whether `given` is this session's CSRF token (constant time).
    pub fn csrf_ok(&self, given: &str) -> bool {
        same(&self.csrf, given)
    }
}

/// The live sessions and the cookie's name and attributes.
#[derive(Debug)]
pub struct OpSessions {
    secure: bool,
    live: Mutex<HashMap<[u8; 32], OpSession>>,
}

fn key(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

impl OpSessions {
    /// Sessions whose cookie is `Secure` and `__Host-` prefixed when `secure`.
    pub fn new(secure: bool) -> Self {
        Self {
            secure,
            live: Mutex::default(),
        }
    }

    /// The cookie's name.
    pub fn cookie_name(&self) -> &'static str {
        if self.secure {
            "__Host-connector_operator"
        } else {
            "connector_operator"
        }
    }

    /// A `Set-Cookie` value for `value` (empty, max-age 0: removal).
    pub fn set_cookie(&self, value: &str, max_age: u64) -> String {
        format!(
            "{}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Strict{}",
            self.cookie_name(),
            if self.secure { "; Secure" } else { "" }
        )
    }

    /// Starts a session for operator `name`: the `Set-Cookie` value.
    pub fn open(&self, name: &str) -> String {
        let id = random_token();
        let now = Instant::now();
        let session = OpSession {
            name: name.to_owned(),
            csrf: random_token(),
            expires: now + SESSION_TTL,
        };
        if let Ok(mut live) = self.live.lock() {
            live.retain(|_, s| s.expires > now);
            if live.len() >= MAX_SESSIONS
                && let Some(oldest) = live.iter().min_by_key(|(_, s)| s.expires).map(|(k, _)| *k)
            {
                live.remove(&oldest);
            }
            live.insert(key(&id), session);
        }
        self.set_cookie(&id, SESSION_TTL.as_secs())
    }

    /// The live session the request's cookie names.
    pub fn find(&self, headers: &HeaderMap) -> Option<OpSession> {
        let id = cookie(headers, self.cookie_name())?;
        let live = self.live.lock().ok()?;
        live.get(&key(id))
            .filter(|s| s.expires > Instant::now())
            .cloned()
    }

    /// Ends the request's session: the `Set-Cookie` that removes the cookie.
    pub fn close(&self, headers: &HeaderMap) -> String {
        if let Some(id) = cookie(headers, self.cookie_name())
            && let Ok(mut live) = self.live.lock()
        {
            live.remove(&key(id));
        }
        self.set_cookie("", 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_found_by_its_cookie_until_closed() {
        let s = OpSessions::new(true);
        let set = s.open("alice");
        assert!(set.starts_with("__Host-connector_operator="), "{set}");
        assert!(
            set.contains("; Secure") && set.contains("HttpOnly"),
            "{set}"
        );
        let value = set.split(';').next().unwrap_or_default().to_owned();
        let mut headers = HeaderMap::new();
        headers.insert(
            axum::http::header::COOKIE,
            value.parse().expect("header value"),
        );
        let found = s.find(&headers).expect("live");
        assert_eq!(found.actor(), "admin:alice");
        assert!(found.csrf_ok(&found.csrf.clone()));
        assert!(!found.csrf_ok("forged"));
        s.close(&headers);
        assert!(s.find(&headers).is_none());
        assert_eq!(OpSessions::new(false).cookie_name(), "connector_operator");
    }
}
