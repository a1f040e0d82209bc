//! Sessions and CSRF. A session is a signed cookie (HMAC-SHA256 over the
//! portal id, expiry and a random nonce): no session table, any console
//! instance can check it. The CSRF token of a session is an HMAC of its
//! nonce; every form carries it and every cookie-authenticated API call that
//! changes something sends it as `X-CSRF-Token`. An operator authenticates
//! with `Authorization: Bearer <operator token>` (no cookie, no CSRF).

use axum::http::{HeaderMap, header};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use domain::events::PortalId;
use hmac::{Hmac, Mac};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "connector_session";
/// Name of the cookie holding the OAuth `state` during the install.
pub const STATE_COOKIE: &str = "connector_oauth_state";
/// How long a session lasts.
pub const SESSION_SECS: i64 = 8 * 3600;

/// The key sessions are signed with, derived from the encryption key.
pub struct SessionKeys {
    key: SecretString,
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

    /// A new session cookie value for `portal`.
    pub fn issue(&self, portal: PortalId) -> String {
        let expires = chrono::Utc::now().timestamp() + SESSION_SECS;
        let payload = format!("{}.{expires}.{}", portal.0, random_token());
        format!("{payload}.{}", self.sign(&payload))
    }

    /// The portal and CSRF token of a valid, unexpired cookie value.
    pub fn check(&self, value: &str) -> Option<Principal> {
        let (payload, sig) = value.rsplit_once('.')?;
        let expected = self.sign(payload);
        if !bool::from(expected.as_bytes().ct_eq(sig.as_bytes())) {
            return None;
        }
        let mut parts = payload.splitn(3, '.');
        let portal: u64 = parts.next()?.parse().ok()?;
        let expires: i64 = parts.next()?.parse().ok()?;
        let nonce = parts.next()?;
        if expires < chrono::Utc::now().timestamp() {
            return None;
        }
        Some(Principal::Portal {
            portal: PortalId(portal),
            csrf: URL_SAFE_NO_PAD.encode(mac(
                self.key.expose_secret().as_bytes(),
                &[b"csrf", nonce.as_bytes()],
            )),
        })
    }
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

/// A `Set-Cookie` value: HttpOnly, SameSite=Lax (the OAuth callback is a
/// top-level navigation from HubSpot and must carry the state cookie), Secure
/// on https.
pub fn set_cookie(name: &str, value: &str, max_age: i64, secure: bool) -> String {
    format!(
        "{name}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax{}",
        if secure { "; Secure" } else { "" }
    )
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
        let p = keys.check(&v).expect("valid");
        assert!(p.may_see(PortalId(7)));
        assert!(!p.may_see(PortalId(8)));
        let forged = v.replacen('7', "8", 1);
        assert_eq!(keys.check(&forged), None);
        let other = SessionKeys::derive("other", &SecretString::from("s"));
        assert_eq!(other.check(&v), None);
    }
}
