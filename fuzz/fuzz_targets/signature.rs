//! Signature verification and v3 URI decoding on arbitrary requests: never
//! panics; a request signed with the secret over its own fields verifies,
//! and any change of body breaks it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use domain::signature::{SignedRequest, Verifier, decode_v3_uri, sign_v3};

const SECRET: &str = "fuzz-client-secret";
const NOW: u64 = 1_700_000_000_000;

fuzz_target!(|data: &[u8]| {
    // Fields separated by 0x00: uri, signature, version, v3, timestamp, body.
    let mut parts = data.splitn(6, |b| *b == 0);
    let mut next = || parts.next().map(String::from_utf8_lossy);
    let (uri, sig, version, v3, ts) = (next(), next(), next(), next(), next());
    let body = parts_rest(data);
    let uri = uri.unwrap_or_default();
    let _ = decode_v3_uri(&uri);
    let mut verifier = Verifier::new(SECRET, 300);
    verifier.accept_v1 = data.first().is_some_and(|b| b & 1 == 1);
    verifier.accept_v2 = data.first().is_some_and(|b| b & 2 == 2);
    let req = SignedRequest {
        method: "POST",
        uri: &uri,
        body,
        signature: sig.as_deref(),
        signature_version: version.as_deref(),
        signature_v3: v3.as_deref(),
        timestamp: ts.as_deref(),
    };
    let _ = verifier.verify(&req, NOW);

    // A genuine signature over the same URI and body must verify...
    let stamp = NOW.to_string();
    let good = sign_v3(SECRET.as_bytes(), "POST", &uri, body, &stamp);
    let genuine = SignedRequest {
        signature_v3: Some(&good),
        timestamp: Some(&stamp),
        signature: None,
        signature_version: None,
        ..req
    };
    assert!(verifier.verify(&genuine, NOW).is_ok(), "a genuine signature failed");
    // ...and the same signature over a different body must not.
    let mut other = body.to_vec();
    other.push(b'x');
    let forged = SignedRequest {
        body: &other,
        ..genuine
    };
    assert!(verifier.verify(&forged, NOW).is_err(), "a forged body verified");
});

/// Everything after the fifth 0x00 (the body), or nothing.
fn parts_rest(data: &[u8]) -> &[u8] {
    let mut seen = 0;
    for (i, b) in data.iter().enumerate() {
        if *b == 0 {
            seen += 1;
            if seen == 5 {
                return &data[i + 1..];
            }
        }
    }
    &[]
}
