//! HubSpot's webhook signatures, computed the way HubSpot computes them.
//! Written independently of the code under test on purpose.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// The signature headers of one delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureHeaders {
    /// `X-HubSpot-Signature` (v1).
    pub v1: String,
    /// `X-HubSpot-Signature-v3`.
    pub v3: String,
    /// `X-HubSpot-Request-Timestamp`, epoch milliseconds.
    pub timestamp_ms: String,
}

/// v1: `hex(SHA256(client_secret + body))`.
pub fn sign_v1(client_secret: &str, body: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(client_secret.as_bytes());
    h.update(body);
    hex::encode(h.finalize())
}

/// v2: `hex(SHA256(client_secret + METHOD + URI + body))`.
pub fn sign_v2(client_secret: &str, method: &str, uri: &str, body: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(client_secret.as_bytes());
    h.update(method.as_bytes());
    h.update(uri.as_bytes());
    h.update(body);
    hex::encode(h.finalize())
}

/// The URI as HubSpot signs it for v3: these percent-escapes decoded (either
/// case), every other byte as is.
pub fn v3_uri(uri: &str) -> String {
    const TABLE: [(&str, char); 12] = [
        ("3A", ':'),
        ("2F", '/'),
        ("3F", '?'),
        ("40", '@'),
        ("21", '!'),
        ("24", '$'),
        ("27", '\''),
        ("28", '('),
        ("29", ')'),
        ("2A", '*'),
        ("2C", ','),
        ("3B", ';'),
    ];
    let mut out = String::with_capacity(uri.len());
    let mut rest = uri;
    while let Some(pos) = rest.find('%') {
        out.push_str(&rest[..pos]);
        let escape = rest.get(pos + 1..pos + 3).map(str::to_ascii_uppercase);
        match escape.and_then(|e| TABLE.iter().find(|(code, _)| *code == e)) {
            Some((_, c)) => {
                out.push(*c);
                rest = &rest[pos + 3..];
            }
            None => {
                out.push('%');
                rest = &rest[pos + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// v3: `base64(HMAC-SHA256(client_secret, METHOD + URI' + body + timestamp))`
/// where `URI'` is [`v3_uri`] of the URL called.
pub fn sign_v3(
    client_secret: &str,
    method: &str,
    uri: &str,
    body: &[u8],
    timestamp_ms: &str,
) -> String {
    // HMAC accepts keys of any length; this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(client_secret.as_bytes())
        .expect("HMAC takes any key length");
    mac.update(method.as_bytes());
    mac.update(v3_uri(uri).as_bytes());
    mac.update(body);
    mac.update(timestamp_ms.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Both headers HubSpot sends with CRM object webhooks, for a POST to `url`.
pub fn sign(client_secret: &str, url: &str, body: &[u8], timestamp_ms: i64) -> SignatureHeaders {
    let ts = timestamp_ms.to_string();
    SignatureHeaders {
        v1: sign_v1(client_secret, body),
        v3: sign_v3(client_secret, "POST", url, body, &ts),
        timestamp_ms: ts,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v3_uri_decodes_only_hubspots_table() {
        assert_eq!(
            v3_uri("https://h.io/w?t=a%40b%3a%2Fc%20d%25"),
            "https://h.io/w?t=a@b:/c%20d%25"
        );
        assert_eq!(v3_uri("https://h.io/%"), "https://h.io/%");
    }
}
