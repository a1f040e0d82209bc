//! HubSpot webhook signatures (v1, v2, v3), exactly as HubSpot computes them:
//! always over the raw request bytes, compared in constant time.
//!
//! ```text
//! v1: hex(SHA256(client_secret + body))
//! v2: hex(SHA256(client_secret + METHOD + URI + body))
//! v3: base64(HMAC-SHA256(client_secret, METHOD + URI' + body + timestamp))
//! ```

use std::borrow::Cow;

use base64::{
    Engine, alphabet,
    engine::{
        DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig,
        general_purpose::STANDARD as BASE64,
    },
};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

mod secret;

pub use secret::{MIN_SECRET_LEN, WeakSecret, check_secret};

/// Header carrying the v1/v2 signature.
pub const HEADER_SIGNATURE: &str = "x-hubspot-signature";
/// Header naming the v1/v2 version.
pub const HEADER_SIGNATURE_VERSION: &str = "x-hubspot-signature-version";
/// Header carrying the v3 signature.
pub const HEADER_SIGNATURE_V3: &str = "x-hubspot-signature-v3";
/// Header carrying the v3 timestamp (epoch milliseconds).
pub const HEADER_TIMESTAMP: &str = "x-hubspot-request-timestamp";

const LENIENT: GeneralPurposeConfig =
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
/// Standard alphabet, padding optional.
const LENIENT_BASE64: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, LENIENT);
/// URL-safe alphabet, padding optional.
const LENIENT_BASE64_URL: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, LENIENT);

/// Which signature scheme a request was verified with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureVersion {
    /// SHA-256 of secret + body.
    V1,
    /// SHA-256 of secret + method + URI + body.
    V2,
    /// HMAC-SHA256 with a timestamp.
    V3,
}

impl SignatureVersion {
    /// Lower-case name, as in the version header.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V1 => "v1",
            Self::V2 => "v2",
            Self::V3 => "v3",
        }
    }
}

/// Why a request's signature was refused. The messages are safe to return to
/// the caller: they never contain the secret or the expected signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No signature header at all.
    #[error("missing signature: expected X-HubSpot-Signature-v3 and X-HubSpot-Request-Timestamp")]
    Missing,
    /// `X-HubSpot-Signature-v3` without a timestamp (or the reverse).
    #[error(
        "incomplete v3 headers: both X-HubSpot-Signature-v3 and X-HubSpot-Request-Timestamp are required"
    )]
    IncompleteV3,
    /// The timestamp is not epoch milliseconds.
    #[error("malformed X-HubSpot-Request-Timestamp: expected epoch milliseconds")]
    MalformedTimestamp,
    /// Older than the allowed age.
    #[error(
        "stale request: X-HubSpot-Request-Timestamp is {age_secs} s old (limit {limit_secs} s)"
    )]
    TooOld {
        /// Age of the request.
        age_secs: u64,
        /// The configured limit.
        limit_secs: u64,
    },
    /// Further in the future than the allowed skew.
    #[error("X-HubSpot-Request-Timestamp is {ahead_secs} s in the future (limit {limit_secs} s)")]
    InFuture {
        /// How far ahead of our clock.
        ahead_secs: u64,
        /// The configured limit.
        limit_secs: u64,
    },
    /// A v1/v2 signature arrived but that version is not enabled.
    #[error("signature version {0} is not accepted by this connector (send v3)")]
    VersionNotAccepted(&'static str),
    /// The version header names something unknown.
    #[error("unknown X-HubSpot-Signature-Version")]
    UnknownVersion,
    /// The signature does not match.
    #[error("invalid {0} signature")]
    Mismatch(&'static str),
}

impl SignatureError {
    /// A stable machine-readable code saying which check failed.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Missing => "missing_signature",
            Self::IncompleteV3 => "incomplete_signature_headers",
            Self::MalformedTimestamp => "malformed_timestamp",
            Self::TooOld { .. } => "stale_timestamp",
            Self::InFuture { .. } => "future_timestamp",
            Self::VersionNotAccepted(_) => "signature_version_not_accepted",
            Self::UnknownVersion => "unknown_signature_version",
            Self::Mismatch(_) => "invalid_signature",
        }
    }
}

/// What verification needs besides the request.
#[derive(Clone)]
pub struct Verifier {
    secret: Vec<u8>,
    /// Accept v1 when no v3 headers are present.
    pub accept_v1: bool,
    /// Accept v2 when no v3 headers are present.
    pub accept_v2: bool,
    /// Allowed age (and future skew) of v3 timestamps, in milliseconds.
    pub max_age_ms: u64,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("secret", &"[redacted]")
            .field("accept_v1", &self.accept_v1)
            .field("accept_v2", &self.accept_v2)
            .field("max_age_ms", &self.max_age_ms)
            .finish()
    }
}

/// The signature-relevant parts of a request.
#[derive(Debug, Clone, Copy)]
pub struct SignedRequest<'a> {
    /// HTTP method, e.g. `POST`.
    pub method: &'a str,
    /// The full public URL HubSpot called (scheme, host, path, query).
    pub uri: &'a str,
    /// The raw body bytes.
    pub body: &'a [u8],
    /// `X-HubSpot-Signature`.
    pub signature: Option<&'a str>,
    /// `X-HubSpot-Signature-Version`.
    pub signature_version: Option<&'a str>,
    /// `X-HubSpot-Signature-v3`.
    pub signature_v3: Option<&'a str>,
    /// `X-HubSpot-Request-Timestamp`.
    pub timestamp: Option<&'a str>,
}

impl Verifier {
    /// A verifier for the app with this client secret; only v3 accepted.
    pub fn new(client_secret: &str, max_age_secs: u64) -> Self {
        Self {
            secret: client_secret.as_bytes().to_vec(),
            accept_v1: false,
            accept_v2: false,
            max_age_ms: max_age_secs.saturating_mul(1000),
        }
    }

    /// The same checks (versions, allowed age) with another client secret,
    /// e.g. a private app's.
    pub fn with_secret(&self, client_secret: &str) -> Self {
        Self {
            secret: client_secret.as_bytes().to_vec(),
            accept_v1: self.accept_v1,
            accept_v2: self.accept_v2,
            max_age_ms: self.max_age_ms,
        }
    }

    /// Checks a request at `now_ms` (epoch milliseconds). v3 is preferred
    /// whenever its headers are present; v1/v2 only when enabled.
    pub fn verify(
        &self,
        req: &SignedRequest<'_>,
        now_ms: u64,
    ) -> Result<SignatureVersion, SignatureError> {
        match (req.signature_v3, req.timestamp) {
            (Some(sig), Some(ts)) => return self.verify_v3(req, sig.trim(), ts.trim(), now_ms),
            (Some(_), None) | (None, Some(_)) if req.signature.is_none() => {
                return Err(SignatureError::IncompleteV3);
            }
            _ => {}
        }
        let Some(sig) = req.signature else {
            return Err(SignatureError::Missing);
        };
        let version = req.signature_version.map(str::trim).unwrap_or("v1");
        let (version, expected) = if version.eq_ignore_ascii_case("v1") {
            if !self.accept_v1 {
                return Err(SignatureError::VersionNotAccepted("v1"));
            }
            (SignatureVersion::V1, sign_v1(&self.secret, req.body))
        } else if version.eq_ignore_ascii_case("v2") {
            if !self.accept_v2 {
                return Err(SignatureError::VersionNotAccepted("v2"));
            }
            (
                SignatureVersion::V2,
                sign_v2(&self.secret, req.method, req.uri, req.body),
            )
        } else {
            return Err(SignatureError::UnknownVersion);
        };
        // Hex digests: compare case-insensitively, in constant time.
        let given = sig.trim().to_ascii_lowercase();
        if bool::from(given.as_bytes().ct_eq(expected.as_bytes())) {
            Ok(version)
        } else {
            Err(SignatureError::Mismatch(version.as_str()))
        }
    }

    fn verify_v3(
        &self,
        req: &SignedRequest<'_>,
        sig: &str,
        ts: &str,
        now_ms: u64,
    ) -> Result<SignatureVersion, SignatureError> {
        let sent_ms = parse_timestamp_ms(ts).ok_or(SignatureError::MalformedTimestamp)?;
        let limit_secs = self.max_age_ms / 1000;
        if now_ms > sent_ms && now_ms - sent_ms > self.max_age_ms {
            return Err(SignatureError::TooOld {
                age_secs: (now_ms - sent_ms) / 1000,
                limit_secs,
            });
        }
        if sent_ms > now_ms && sent_ms - now_ms > self.max_age_ms {
            return Err(SignatureError::InFuture {
                ahead_secs: (sent_ms - now_ms) / 1000,
                limit_secs,
            });
        }
        // Compare the decoded MACs, so missing padding or the URL-safe
        // alphabet in the header never make a valid signature fail; the
        // comparison itself is constant-time.
        let expected = mac_v3(&self.secret, req.method, req.uri, req.body, ts);
        let given = LENIENT_BASE64
            .decode(sig)
            .or_else(|_| LENIENT_BASE64_URL.decode(sig))
            .map_err(|_| SignatureError::Mismatch("v3"))?;
        if bool::from(given.as_slice().ct_eq(expected.as_slice())) {
            Ok(SignatureVersion::V3)
        } else {
            Err(SignatureError::Mismatch("v3"))
        }
    }
}

/// Parses epoch milliseconds; tolerates a float rendering such as
/// `1564113600000.0`, which some senders produce.
fn parse_timestamp_ms(ts: &str) -> Option<u64> {
    if let Ok(v) = ts.parse::<u64>() {
        return Some(v);
    }
    let f: f64 = ts.parse().ok()?;
    (0.0..1e16).contains(&f).then_some(f as u64)
}

/// v1 signature: lower-case hex SHA-256 of secret + body.
pub fn sign_v1(secret: &[u8], body: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(secret);
    h.update(body);
    hex::encode(h.finalize())
}

/// v2 signature: lower-case hex SHA-256 of secret + method + URI + body.
pub fn sign_v2(secret: &[u8], method: &str, uri: &str, body: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(secret);
    h.update(method.as_bytes());
    h.update(uri.as_bytes());
    h.update(body);
    hex::encode(h.finalize())
}

/// v3 signature: base64 HMAC-SHA256 over method + decoded URI + body + timestamp.
pub fn sign_v3(secret: &[u8], method: &str, uri: &str, body: &[u8], timestamp: &str) -> String {
    BASE64.encode(mac_v3(secret, method, uri, body, timestamp))
}

fn mac_v3(secret: &[u8], method: &str, uri: &str, body: &[u8], timestamp: &str) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(method.as_bytes());
    mac.update(decode_v3_uri(uri).as_bytes());
    mac.update(body);
    mac.update(timestamp.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// Decodes exactly the percent-escapes HubSpot decodes before signing v3
/// (upper- or lower-case hex); every other escape is left as sent.
pub fn decode_v3_uri(uri: &str) -> Cow<'_, str> {
    if !uri.contains('%') {
        return Cow::Borrowed(uri);
    }
    let bytes = uri.as_bytes();
    let mut out = String::with_capacity(uri.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let code = [
                bytes[i + 1].to_ascii_uppercase(),
                bytes[i + 2].to_ascii_uppercase(),
            ];
            let decoded = match &code {
                b"3A" => Some(':'),
                b"2F" => Some('/'),
                b"3F" => Some('?'),
                b"40" => Some('@'),
                b"21" => Some('!'),
                b"24" => Some('$'),
                b"27" => Some('\''),
                b"28" => Some('('),
                b"29" => Some(')'),
                b"2A" => Some('*'),
                b"2C" => Some(','),
                b"3B" => Some(';'),
                _ => None,
            };
            if let Some(c) = decoded {
                out.push(c);
                i += 3;
                continue;
            }
        }
        // Copy one UTF-8 character unchanged.
        let ch_len = uri[i..].chars().next().map_or(1, char::len_utf8);
        out.push_str(&uri[i..i + ch_len]);
        i += ch_len;
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests;
