use std::collections::HashMap;

use domain::signature::{SignatureVersion, SignedRequest, sign_v3};

use super::*;

const NOW: u64 = 1_700_000_000_000;

fn cache(default: Option<&str>) -> WebhookSecrets {
    let template = Verifier::new("", 300);
    WebhookSecrets::new(
        default.map(|d| SecretString::from(d.to_owned())).as_ref(),
        template,
    )
}

fn key(secret: &str) -> PortalKey {
    PortalKey::Secret(SecretString::from(secret.to_owned()))
}

/// Whether `v` accepts a body signed with `secret`.
fn accepts(v: &Verifier, secret: &str) -> bool {
    let ts = NOW.to_string();
    let uri = "https://hooks.example.com/webhooks/hubspot";
    let sig = sign_v3(secret.as_bytes(), "POST", uri, b"[]", &ts);
    let r = SignedRequest {
        method: "POST",
        uri,
        body: b"[]",
        signature: None,
        signature_version: None,
        signature_v3: Some(&sig),
        timestamp: Some(&ts),
    };
    v.verify(&r, NOW) == Ok(SignatureVersion::V3)
}

#[test]
fn without_portal_keys_everything_uses_the_default() {
    let c = cache(Some("public"));
    assert!(!c.has_portal_keys());
    assert!(accepts(&c.key_for(None).expect("default"), "public"));
    assert!(accepts(
        &c.key_for(Some(PortalId(7))).expect("default"),
        "public"
    ));
    let none = cache(None);
    assert_eq!(none.key_for(Some(PortalId(7))).err(), Some(NoKey::Unknown));
    assert_eq!(none.key_for(None).err(), Some(NoKey::Unknown));
}

#[test]
fn a_portal_with_its_own_secret_is_checked_with_it_only() {
    let c = cache(Some("public"));
    c.replace(
        Source::Database,
        HashMap::from([(1, key("secret-a")), (2, key("secret-b"))]),
    );
    assert!(c.has_portal_keys());
    let a = c.key_for(Some(PortalId(1))).expect("a");
    assert!(accepts(&a, "secret-a"));
    assert!(
        !accepts(&a, "public"),
        "the default does not speak for portal 1"
    );
    assert!(!accepts(&a, "secret-b"), "nor another portal's secret");
    let b = c.key_for(Some(PortalId(2))).expect("b");
    assert!(accepts(&b, "secret-b") && !accepts(&b, "secret-a"));
    // Other portals, and deliveries naming several: the default.
    assert!(accepts(&c.key_for(Some(PortalId(3))).expect("d"), "public"));
    assert!(accepts(&c.key_for(None).expect("d"), "public"));
}

#[test]
fn keys_keep_the_configured_checks() {
    let mut template = Verifier::new("", 60);
    template.accept_v1 = true;
    let c = WebhookSecrets::new(None, template);
    c.update(Source::File, PortalId(1), Some(key("s")));
    let v = c.key_for(Some(PortalId(1))).expect("key");
    assert!(v.accept_v1 && !v.accept_v2);
    assert_eq!(v.max_age_ms, 60_000);
}

#[test]
fn the_file_wins_over_the_database_and_updates_are_seen_at_once() {
    let c = cache(None);
    c.replace(Source::Database, HashMap::from([(1, key("from-db"))]));
    c.replace(Source::File, HashMap::from([(1, key("from-file"))]));
    assert!(accepts(
        &c.key_for(Some(PortalId(1))).expect("k"),
        "from-file"
    ));
    c.replace(Source::File, HashMap::new());
    assert!(accepts(
        &c.key_for(Some(PortalId(1))).expect("k"),
        "from-db"
    ));
    c.update(Source::Database, PortalId(1), Some(key("rotated")));
    assert!(accepts(
        &c.key_for(Some(PortalId(1))).expect("k"),
        "rotated"
    ));
    c.update(Source::Database, PortalId(1), None);
    assert!(!c.has_portal_keys());
    assert_eq!(c.key_for(Some(PortalId(1))).err(), Some(NoKey::Unknown));
}

#[test]
fn an_unreadable_secret_refuses_its_portal_instead_of_falling_back() {
    let c = cache(Some("public"));
    c.update(Source::Database, PortalId(5), Some(PortalKey::Unreadable));
    assert_eq!(
        c.key_for(Some(PortalId(5))).err(),
        Some(NoKey::Unreadable(PortalId(5)))
    );
    assert!(c.key_for(Some(PortalId(6))).is_ok());
}

#[test]
fn the_database_age_counts_from_the_last_full_read() {
    let c = cache(None);
    std::thread::sleep(Duration::from_millis(20));
    assert!(c.db_age() >= Duration::from_millis(20), "since start");
    c.mark_db_synced();
    assert!(c.db_age() < Duration::from_millis(20));
}

#[test]
fn the_secrets_file_format() {
    let parsed = file::parse(
        "# private apps\n\n  101 = secret-one-0123456789 \n202=two=with=equals=0123456789\n",
    )
    .expect("valid");
    assert_eq!(parsed.len(), 2);
    assert_eq!(parsed[&101].expose_secret(), "secret-one-0123456789");
    assert_eq!(parsed[&202].expose_secret(), "two=with=equals=0123456789");
    let long = "a-long-enough-secret";
    for (text, problem) in [
        ("101 secret", "line 1: expected PORTAL_ID=SECRET".to_owned()),
        (
            &format!("abc={long}"),
            "line 1: the portal id must be a positive number".into(),
        ),
        (&format!("0={long}"), "line 1: the portal id".into()),
        ("\n101=", "line 2: the secret of portal 101 is empty".into()),
        (
            "101=  short-one ",
            "line 1: the secret of portal 101 is shorter than 16".into(),
        ),
        (
            &format!("101={long}\n101={long}"),
            "line 2: portal 101 is listed twice".into(),
        ),
    ] {
        let e = file::parse(text).expect_err(text);
        assert!(e.starts_with(&problem), "{text}: {e}");
    }
    let e = file::parse("101=do-not-print-me").expect_err("short");
    assert!(!e.contains("do-not-print-me"), "errors never show a secret");
    let e = file::parse(&format!("101={long}\n101=do-not-print-me-either")).expect_err("twice");
    assert!(!e.contains("do-not-print-me"), "errors never show a secret");
}

#[test]
fn the_secrets_file_is_loaded_into_the_cache() {
    let dir = std::env::temp_dir().join(format!("ingest-secrets-{}", uuid::Uuid::new_v4()));
    std::fs::write(&dir, "9=file-secret-0123456789\n").expect("write");
    let c = cache(None);
    let print = file::load_into(&dir, &c).expect("loads");
    assert!(accepts(
        &c.key_for(Some(PortalId(9))).expect("k"),
        "file-secret-0123456789"
    ));
    std::fs::write(&dir, "9=other-secret-0123456789\n").expect("write");
    let (_, changed) = file::load(&dir).expect("loads");
    assert_ne!(print, changed, "a change is noticed");
    std::fs::remove_file(&dir).expect("remove");
    assert!(file::load(&dir).is_err());
}
