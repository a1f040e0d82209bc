//! Sessions and CSRF. A session is a row of `website_sessions` (portal,
//! the HubSpot user who logged in, expiry) named by a random id; the
//! cookie carries the id with the portal and expiry, signed (HMAC-SHA256),
//! so a forged cookie is refused without a database read. Logging out
//! deletes the row, and so does an uninstall (the portal marked
//! `uninstalled`) or deleting the account: a copied cookie is refused from
//! then on. The CSRF token of a session is an HMAC of its id; every form
//! carries it and every cookie-authenticated API call that changes
//! something sends it as `X-CSRF-Token`. The operator authenticates with
//! `Authorization: Bearer <operator token>` (no cookie, no CSRF).
//!
//! Cookies are `HttpOnly`, `SameSite=Lax`, and, when the public URL is
//! https, `Secure` with the `__Host-` name prefix (the browser then keeps
//! them to this host and path `/`, whatever a sibling subdomain sets).

use axum::http::{HeaderMap, header};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use domain::events::PortalId;
use hmac::{Hmac, Mac};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Name of the session cookie over http (quick start, local runs).
pub const SESSION_COOKIE: &str = "connector_session";
/// Name of the cookie holding the OAuth `state` during the install, over http.
pub const STATE_COOKIE: &str = "connector_oauth_state";
/// How long a session lasts.
pub const SESSION_SECS: i64 = 8 * 3600;

/// The cookies' names and attributes, from the public URL's scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CookiePolicy {
    /// `Secure` and the `__Host-` prefix (the public URL is https).
    pub secure: bool,
}

impl CookiePolicy {
    /// The session cookie's name.
    pub fn session(self) -> &'static str {
        if self.secure {
            "__Host-connector_session"
        } else {
            SESSION_COOKIE
        }
    }

    /// The OAuth state cookie's name.
    pub fn state(self) -> &'static str {
        if self.secure {
            "__Host-connector_oauth_state"
        } else {
            STATE_COOKIE
        }
    }

    /// A `Set-Cookie` value: HttpOnly, SameSite=Lax (the OAuth callback is
    /// a top-level navigation from HubSpot and must carry the state
    /// cookie), Path=/, no Domain, Secure on https.
    pub fn set(self, name: &str, value: &str, max_age: i64) -> String {
        format!(
            "{name}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax{}",
            if self.secure { "; Secure" } else { "" }
        )
    }

    /// A `Set-Cookie` that removes cookie `name`.
    pub fn clear(self, name: &str) -> String {
        self.set(name, "", 0)
    }
}

/// The key sessions are signed with, derived from the encryption key.
pub struct SessionKeys {
    key: SecretString,
}

/// A cookie whose signature and expiry are good: the session it names
/// still has to exist ([`crate::web::Website::session`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    /// The portal.
    pub portal: PortalId,
    /// The session's key in `website_sessions` (SHA-256 of its id).
    pub key: Vec<u8>,
    /// The session's CSRF token.
    pub csrf: String,
}

/// A new session: the cookie's value and the row's key.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The cookie's value.
    pub cookie: String,
    /// The key of its row (SHA-256 of its id).
    pub key: Vec<u8>,
}

/// The HubSpot user of a session, for the audit log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct User {
    /// HubSpot's user id.
    pub id: Option<i64>,
    /// The user's email address.
    pub email: Option<String>,
}

impl User {
    /// The audit log's actor for `channel` (`website`, `api`) and `portal`:
    /// `website:portal:1001:user:77:jane@example.com` (the parts HubSpot
    /// did not say are left out).
    pub fn actor(&self, channel: &str, portal: PortalId) -> String {
        let mut a = format!("{channel}:portal:{portal}");
        if self.id.is_some() || self.email.is_some() {
            a.push_str(":user");
            if let Some(id) = self.id {
                a.push_str(&format!(":{id}"));
            }
            if let Some(e) = &self.email {
                a.push_str(&format!(":{e}"));
            }
        }
        a
    }
}

/// Who is asking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// A website session, for one portal.
    Portal {
        /// The portal logged in through HubSpot.
        portal: PortalId,
        /// The session's CSRF token.
        csrf: String,
        /// The HubSpot user who logged in.
        user: User,
    },
    /// An operator token: every portal.
    Operator {
        /// The token's name (the audit log's actor).
        name: String,
    },
}

impl Principal {
    /// May this principal see `portal`?
    pub fn may_see(&self, portal: PortalId) -> bool {
        match self {
            Self::Portal { portal: p, .. } => *p == portal,
            Self::Operator { .. } => true,
        }
    }
}

fn mac(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes keys of any length");
    for p in parts {
        m.update(p);
        m.update(b"\x1f");
    }
    m.finalize().into_bytes().to_vec()
}

impl SessionKeys {
    /// Derives the signing key from the encryption key and the app secret.
    pub fn derive(encryption_key: &str, client_secret: &SecretString) -> Self {
        let k = mac(
            encryption_key.as_bytes(),
            &[
                b"connector-website-session",
                client_secret.expose_secret().as_bytes(),
            ],
        );
        Self {
            key: SecretString::from(URL_SAFE_NO_PAD.encode(k)),
        }
    }

    fn sign(&self, payload: &str) -> String {
        URL_SAFE_NO_PAD.encode(mac(
            self.key.expose_secret().as_bytes(),
            &[payload.as_bytes()],
        ))
    }

    /// A new session cookie value for `portal` (its row is stored by the caller).
    pub fn issue(&self, portal: PortalId) -> Issued {
        let expires = chrono::Utc::now().timestamp() + SESSION_SECS;
        let id = random_token();
        let payload = format!("{}.{expires}.{id}", portal.0);
        Issued {
            cookie: format!("{payload}.{}", self.sign(&payload)),
            key: key_of(&id),
        }
    }

    /// The portal, row key and CSRF token of a cookie value whose
    /// signature and expiry are good.
    pub fn check(&self, value: &str) -> Option<Signed> {
        let (payload, sig) = value.rsplit_once('.')?;
        let expected = self.sign(payload);
        if !bool::from(expected.as_bytes().ct_eq(sig.as_bytes())) {
            return None;
        }
        let mut parts = payload.splitn(3, '.');
        let portal: u64 = parts.next()?.parse().ok()?;
        let expires: i64 = parts.next()?.parse().ok()?;
        let id = parts.next()?;
        if expires < chrono::Utc::now().timestamp() {
            return None;
        }
        Some(Signed {
            portal: PortalId(portal),
            key: key_of(id),
            csrf: URL_SAFE_NO_PAD.encode(mac(
                self.key.expose_secret().as_bytes(),
                &[b"csrf", id.as_bytes()],
            )),
        })
    }
}

/// The stored key of session id `id`: its SHA-256 (a database reader
/// cannot turn rows back into cookies).
fn key_of(id: &str) -> Vec<u8> {
    Sha256::digest(id.as_bytes()).to_vec()
}

/// 32 random bytes, base64url.
pub fn random_token() -> String {
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    URL_SAFE_NO_PAD.encode(b)
}

/// A cookie's value from the request headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Constant-time string equality (CSRF tokens, OAuth state).
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_round_trips_and_tampering_is_refused() {
        let keys = SessionKeys::derive("k", &SecretString::from("s"));
        let v = keys.issue(PortalId(7));
        let p = keys.check(&v.cookie).expect("valid");
        assert_eq!(p.portal, PortalId(7));
        assert_eq!(p.key, v.key);
        let forged = v.cookie.replacen('7', "8", 1);
        assert_eq!(keys.check(&forged), None);
        let other = SessionKeys::derive("other", &SecretString::from("s"));
        assert_eq!(other.check(&v.cookie), None);
    }

    #[test]
    fn cookies_are_host_prefixed_and_secure_only_over_https() {
        let https = CookiePolicy { secure: true };
        assert_eq!(https.session(), "__Host-connector_session");
        let c = https.set(https.session(), "v", 60);
        // `__Host-` needs Secure, Path=/ and no Domain, or browsers drop it.
        assert!(c.contains("; Secure") && c.contains("Path=/") && !c.contains("Domain"));
        let http = CookiePolicy { secure: false };
        assert_eq!(http.session(), SESSION_COOKIE);
        assert!(!http.set(http.session(), "v", 60).contains("Secure"));
        assert!(http.clear(STATE_COOKIE).contains("Max-Age=0"));
    }

    #[test]
    fn the_actor_names_the_hubspot_user() {
        let u = User {
            id: Some(77),
            email: Some("jane@example.com".into()),
        };
        assert_eq!(
            u.actor("website", PortalId(1001)),
            "website:portal:1001:user:77:jane@example.com"
        );
        assert_eq!(User::default().actor("api", PortalId(1)), "api:portal:1");
    }
}
