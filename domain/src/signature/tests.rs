use super::*;

// HubSpot's own published vectors (hubspot-api-python, tests/spec/utils/test_signature.py).
const SECRET: &str = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy";
const BODY: &str = "{'example_field':'example_value'}";
const URL: &str = "https://www.example.com/webhook_uri";

fn verifier() -> Verifier {
    let mut v = Verifier::new(SECRET, 300);
    v.accept_v1 = true;
    v.accept_v2 = true;
    v
}

fn request<'a>(body: &'a str, uri: &'a str) -> SignedRequest<'a> {
    SignedRequest {
        method: "POST",
        uri,
        body: body.as_bytes(),
        signature: None,
        signature_version: None,
        signature_v3: None,
        timestamp: None,
    }
}

#[test]
fn another_secret_keeps_the_checks_and_changes_the_key() {
    let other = verifier().with_secret("private-app-secret");
    assert!(other.accept_v1 && other.accept_v2);
    assert_eq!(other.max_age_ms, 300_000);
    let body = b"[]";
    let sig = sign_v1(b"private-app-secret", body);
    let r = SignedRequest {
        method: "POST",
        uri: "https://hooks.example.com/",
        body,
        signature: Some(&sig),
        signature_version: Some("v1"),
        signature_v3: None,
        timestamp: None,
    };
    assert_eq!(other.verify(&r, 0), Ok(SignatureVersion::V1));
    assert_eq!(
        verifier().verify(&r, 0),
        Err(SignatureError::Mismatch("v1"))
    );
    assert!(!format!("{other:?}").contains("private-app-secret"));
}

#[test]
fn hubspot_published_vectors() {
    assert_eq!(
        sign_v1(SECRET.as_bytes(), BODY.as_bytes()),
        "69fc6631a867edd4f9e9e627fc5c1148e3fbdd8b21837b6d2b8901c1fa57f750"
    );
    assert_eq!(
        sign_v2(SECRET.as_bytes(), "POST", URL, BODY.as_bytes()),
        "4fe4e3a7d3cf09db53be39d0a58130e2aaba074ec123a9e355b876a689a1c383"
    );
    assert_eq!(
        sign_v2(SECRET.as_bytes(), "GET", URL, b""),
        "eee2dddcc73c94d699f5e395f4b9d454a069a6855fbfa152e91e88823087200e"
    );
    assert_eq!(
        sign_v3(SECRET.as_bytes(), "POST", URL, BODY.as_bytes(), "15000000"),
        "HPW73RUtKmcYoEDADG0s6MmGFWUzWJKAW07r8RDgcQw="
    );
}

#[test]
fn v3_published_vector_verifies_at_its_own_time() {
    let mut r = request(BODY, URL);
    r.signature_v3 = Some("HPW73RUtKmcYoEDADG0s6MmGFWUzWJKAW07r8RDgcQw=");
    r.timestamp = Some("15000000");
    assert_eq!(
        verifier().verify(&r, 15_000_000 + 1000),
        Ok(SignatureVersion::V3)
    );
}

#[test]
fn v3_rejects_stale_and_future_timestamps() {
    let now = 1_700_000_000_000u64;
    for (ts, expect_old) in [(now - 300_001, true), (now + 300_001, false)] {
        let ts_s = ts.to_string();
        let sig = sign_v3(SECRET.as_bytes(), "POST", URL, BODY.as_bytes(), &ts_s);
        let mut r = request(BODY, URL);
        r.signature_v3 = Some(&sig);
        r.timestamp = Some(&ts_s);
        let err = verifier().verify(&r, now).expect_err("outside the window");
        assert_eq!(
            matches!(err, SignatureError::TooOld { .. }),
            expect_old,
            "{err}"
        );
        assert_eq!(
            matches!(err, SignatureError::InFuture { .. }),
            !expect_old,
            "{err}"
        );
    }
    // Exactly at the limit is still fine; seconds instead of milliseconds is not.
    let ts_s = (now - 300_000).to_string();
    let sig = sign_v3(SECRET.as_bytes(), "POST", URL, BODY.as_bytes(), &ts_s);
    let mut r = request(BODY, URL);
    r.signature_v3 = Some(&sig);
    r.timestamp = Some(&ts_s);
    assert!(verifier().verify(&r, now).is_ok());
    let secs = (now / 1000).to_string();
    let sig = sign_v3(SECRET.as_bytes(), "POST", URL, BODY.as_bytes(), &secs);
    r.signature_v3 = Some(&sig);
    r.timestamp = Some(&secs);
    assert!(matches!(
        verifier().verify(&r, now),
        Err(SignatureError::TooOld { .. })
    ));
}

#[test]
fn v3_tampering_is_detected() {
    let now = 1_700_000_000_000u64;
    let ts = now.to_string();
    let sig = sign_v3(SECRET.as_bytes(), "POST", URL, BODY.as_bytes(), &ts);
    let mut r = request(BODY, URL);
    r.signature_v3 = Some(&sig);
    r.timestamp = Some(&ts);
    assert!(verifier().verify(&r, now).is_ok());
    let other_body = request("{'example_field':'other'}", URL);
    let cases = [
        SignedRequest {
            body: other_body.body,
            ..r
        },
        SignedRequest {
            uri: "https://www.example.com/other",
            ..r
        },
        SignedRequest { method: "PUT", ..r },
        SignedRequest {
            timestamp: Some("1700000000001"),
            ..r
        },
        SignedRequest {
            signature_v3: Some("not base64!"),
            ..r
        },
    ];
    for c in cases {
        assert_eq!(
            verifier().verify(&c, now),
            Err(SignatureError::Mismatch("v3")),
            "{c:?}"
        );
    }
    let wrong_key = Verifier::new("another-secret", 300);
    assert_eq!(
        wrong_key.verify(&r, now),
        Err(SignatureError::Mismatch("v3"))
    );
}

#[test]
fn v3_without_padding_or_url_safe_still_verifies() {
    let now = 1_700_000_000_000u64;
    let ts = now.to_string();
    let sig = sign_v3(SECRET.as_bytes(), "POST", URL, BODY.as_bytes(), &ts);
    let unpadded = sig.trim_end_matches('=').to_owned();
    let url_safe = sig.replace('+', "-").replace('/', "_");
    for s in [unpadded, url_safe] {
        let mut r = request(BODY, URL);
        r.signature_v3 = Some(&s);
        r.timestamp = Some(&ts);
        assert_eq!(verifier().verify(&r, now), Ok(SignatureVersion::V3), "{s}");
    }
}

#[test]
fn every_error_has_its_own_code() {
    let codes = [
        SignatureError::Missing.code(),
        SignatureError::IncompleteV3.code(),
        SignatureError::MalformedTimestamp.code(),
        SignatureError::TooOld {
            age_secs: 1,
            limit_secs: 1,
        }
        .code(),
        SignatureError::InFuture {
            ahead_secs: 1,
            limit_secs: 1,
        }
        .code(),
        SignatureError::VersionNotAccepted("v1").code(),
        SignatureError::UnknownVersion.code(),
        SignatureError::Mismatch("v3").code(),
    ];
    let unique: std::collections::HashSet<_> = codes.iter().collect();
    assert_eq!(unique.len(), codes.len());
}

#[test]
fn v3_float_timestamp_is_read_but_signed_as_sent() {
    let now = 1_700_000_000_000u64;
    let ts = "1700000000000.0";
    let sig = sign_v3(SECRET.as_bytes(), "POST", URL, BODY.as_bytes(), ts);
    let mut r = request(BODY, URL);
    r.signature_v3 = Some(&sig);
    r.timestamp = Some(ts);
    assert!(verifier().verify(&r, now).is_ok());
    r.timestamp = Some("yesterday");
    assert_eq!(
        verifier().verify(&r, now),
        Err(SignatureError::MalformedTimestamp)
    );
}

#[test]
fn uri_decoding_follows_hubspots_table_in_both_cases() {
    assert_eq!(
        decode_v3_uri("https://x.io/a%3Ab%2Fc%3Fd%40e%21f%24g%27h%28i%29j%2Ak%2Cl%3Bm"),
        "https://x.io/a:b/c?d@e!f$g'h(i)j*k,l;m"
    );
    assert_eq!(
        decode_v3_uri("https://x.io/p?q=a%3ab%2fc"),
        "https://x.io/p?q=a:b/c"
    );
    // Escapes outside the table stay as sent, as do trailing fragments.
    assert_eq!(
        decode_v3_uri("https://x.io/a%20b%25c%3"),
        "https://x.io/a%20b%25c%3"
    );
    assert_eq!(decode_v3_uri("https://x.io/é%3A"), "https://x.io/é:");
    // A signature computed over the decoded URI verifies against the encoded one.
    let now = 1_700_000_000_000u64;
    let ts = now.to_string();
    let sig = sign_v3(
        SECRET.as_bytes(),
        "POST",
        "https://x.io/h?e=a@b.c",
        BODY.as_bytes(),
        &ts,
    );
    let mut r = request(BODY, "https://x.io/h?e=a%40b.c");
    r.signature_v3 = Some(&sig);
    r.timestamp = Some(&ts);
    assert!(verifier().verify(&r, now).is_ok());
}

#[test]
fn v1_and_v2_only_when_enabled() {
    let v1 = sign_v1(SECRET.as_bytes(), BODY.as_bytes());
    let mut r = request(BODY, URL);
    r.signature = Some(&v1);
    r.signature_version = Some("v1");
    assert_eq!(verifier().verify(&r, 0), Ok(SignatureVersion::V1));
    // Upper-case hex is the same digest.
    let upper = v1.to_ascii_uppercase();
    r.signature = Some(&upper);
    assert_eq!(verifier().verify(&r, 0), Ok(SignatureVersion::V1));
    let strict = Verifier::new(SECRET, 300);
    assert_eq!(
        strict.verify(&r, 0),
        Err(SignatureError::VersionNotAccepted("v1"))
    );

    let v2 = sign_v2(SECRET.as_bytes(), "POST", URL, BODY.as_bytes());
    r.signature = Some(&v2);
    r.signature_version = Some("v2");
    assert_eq!(verifier().verify(&r, 0), Ok(SignatureVersion::V2));
    assert_eq!(
        strict.verify(&r, 0),
        Err(SignatureError::VersionNotAccepted("v2"))
    );
    r.signature_version = Some("v1");
    assert_eq!(
        verifier().verify(&r, 0),
        Err(SignatureError::Mismatch("v1"))
    );
    r.signature_version = Some("v9");
    assert_eq!(
        verifier().verify(&r, 0),
        Err(SignatureError::UnknownVersion)
    );
}

#[test]
fn v3_wins_when_both_are_present() {
    let now = 1_700_000_000_000u64;
    let v1 = sign_v1(SECRET.as_bytes(), BODY.as_bytes());
    let mut r = request(BODY, URL);
    r.signature = Some(&v1);
    r.signature_version = Some("v1");
    r.signature_v3 = Some("AAAA");
    r.timestamp = Some("1700000000000");
    assert_eq!(
        verifier().verify(&r, now),
        Err(SignatureError::Mismatch("v3"))
    );
}

#[test]
fn missing_or_partial_headers() {
    let r = request(BODY, URL);
    assert_eq!(verifier().verify(&r, 0), Err(SignatureError::Missing));
    let mut r2 = r;
    r2.signature_v3 = Some("abc");
    assert_eq!(verifier().verify(&r2, 0), Err(SignatureError::IncompleteV3));
}

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn any_signed_request_verifies_and_any_flipped_byte_fails(
            body in proptest::collection::vec(any::<u8>(), 0..512),
            path in "[a-z0-9/%@:!$'()*,;?=&-]{0,40}",
            flip in any::<prop::sample::Index>(),
        ) {
            let uri = format!("https://hooks.example.com/{path}");
            let now = 1_700_000_000_000u64;
            let ts = now.to_string();
            let sig = sign_v3(SECRET.as_bytes(), "POST", &uri, &body, &ts);
            let mut r = SignedRequest { method: "POST", uri: &uri, body: &body, signature: None,
                signature_version: None, signature_v3: Some(&sig), timestamp: Some(&ts) };
            prop_assert_eq!(verifier().verify(&r, now), Ok(SignatureVersion::V3));
            if !body.is_empty() {
                let mut tampered = body.clone();
                let i = flip.index(tampered.len());
                tampered[i] ^= 0x01;
                r.body = &tampered;
                prop_assert_eq!(verifier().verify(&r, now), Err(SignatureError::Mismatch("v3")));
            }
        }

        #[test]
        fn decoding_never_panics(uri in "\\PC{0,64}") {
            let _ = decode_v3_uri(&uri);
        }
    }
}
