use super::*;
use secrecy::ExposeSecret;

#[test]
fn an_empty_operator_token_is_no_token() {
    let mut s = Settings::defaults();
    assert!(s.operator_token().is_none());
    for empty in ["", "   "] {
        s.admin_token = Some(SecretString::from(empty));
        assert!(s.operator_token().is_none(), "{empty:?}");
    }
    s.admin_token = Some(SecretString::from("t"));
    assert!(s.operator_token().is_some());
    s.console_public_url = Some("ftp://x".into());
    assert!(s.validate_console().is_err());
}

#[test]
fn defaults_match_the_documented_interface() {
    let s = Settings::defaults();
    assert_eq!(s.amqp_url, "amqp://guest:guest@127.0.0.1:5672/%2f");
    assert_eq!(s.ingest_addr.to_string(), "127.0.0.1:8080");
    assert_eq!(s.console_addr.to_string(), "127.0.0.1:8090");
    assert_eq!(s.admin_addr, None);
    assert_eq!(s.queue_prefix, "");
    assert_eq!(s.max_body_bytes, 1 << 20);
    assert!(!s.accept_signature_v1);
}

#[test]
#[allow(clippy::result_large_err)] // figment's Jail API
fn file_then_environment_override_defaults() {
    figment::Jail::expect_with(|jail| {
        jail.create_file("c.toml", "queue_prefix = \"file-\"\nmax_body_bytes = 10\n")?;
        jail.set_env("CONNECTOR_QUEUE_PREFIX", "123");
        jail.set_env("CONNECTOR_HUBSPOT_CLIENT_SECRET", "0042");
        jail.set_env("CONNECTOR_ACCEPT_SIGNATURE_V1", "true");
        let s: Settings =
            Settings::figment(Some(Path::new("c.toml")), std::env::vars()).extract()?;
        assert_eq!(s.queue_prefix, "123");
        assert_eq!(s.max_body_bytes, 10);
        assert!(s.accept_signature_v1);
        let secret = s
            .hubspot_client_secret
            .as_ref()
            .map(|x| x.expose_secret().to_owned());
        assert_eq!(secret.as_deref(), Some("0042"));
        Ok(())
    });
}

#[test]
fn ingest_needs_some_webhook_secret() {
    let mut s = Settings::defaults();
    assert!(
        s.webhook_secrets_db,
        "per-portal secrets from the database by default"
    );
    assert_eq!(s.webhook_secrets_refresh_secs, 60);
    s.validate_ingest().expect("database secrets are a source");
    s.webhook_secrets_db = false;
    let err = s.validate_ingest().expect_err("no secret at all");
    assert!(err.to_string().contains("CONNECTOR_HUBSPOT_CLIENT_SECRET"));
    s.webhook_secrets_file = Some("  ".into());
    assert!(s.validate_ingest().is_err(), "an empty path is no file");
    s.webhook_secrets_file = Some("/etc/connector/webhook-secrets".into());
    s.validate_ingest().expect("a secrets file is a source");
    s.webhook_secrets_db = true;
    s.webhook_secrets_refresh_secs = 0;
    assert!(s.validate_ingest().is_err());
}

#[test]
fn an_empty_or_short_client_secret_is_refused_by_every_process() {
    let mut s = Settings::defaults();
    s.webhook_secrets_db = false;
    s.webhook_secrets_file = Some("/etc/connector/webhook-secrets".into());
    assert!(s.client_secret().expect("unset is fine").is_none());
    s.validate_ingest().expect("unset: no default secret");
    for weak in ["", "   ", "short-secret"] {
        s.hubspot_client_secret = Some(SecretString::from(weak));
        for (process, r) in [
            ("ingest", s.validate_ingest()),
            ("console", s.validate_console()),
            ("worker", s.validate_worker()),
        ] {
            let e = r.expect_err(process).to_string();
            assert!(e.contains("CONNECTOR_HUBSPOT_CLIENT_SECRET"), "{e}");
            assert!(!e.contains('\n'), "one line: {e}");
            if !weak.trim().is_empty() {
                assert!(!e.contains(weak), "the value is not echoed: {e}");
            }
        }
    }
    s.hubspot_client_secret = Some(SecretString::from("3b1c0f2e-8d4a-4c7e-9f1a-2b6d5e8c7a90"));
    s.validate_ingest().expect("a real one");
}

#[test]
#[allow(clippy::result_large_err)] // figment's Jail API
fn listener_limits_come_from_the_environment_and_are_checked() {
    let d = Settings::defaults();
    assert_eq!(d.edge.http_header_timeout_secs, 10);
    assert_eq!(d.edge.http_max_connections, 4096);
    assert_eq!(d.edge.max_body_bytes_in_flight, 64 << 20);
    figment::Jail::expect_with(|jail| {
        jail.set_env("CONNECTOR_HTTP_MAX_CONNECTIONS", "50");
        jail.set_env("CONNECTOR_HTTP_BODY_TIMEOUT_SECS", "2");
        jail.set_env("CONNECTOR_MAX_BODY_BYTES_IN_FLIGHT", "2000000");
        let s: Settings = Settings::figment(None, std::env::vars()).extract()?;
        assert_eq!(s.edge.http_max_connections, 50);
        assert_eq!(s.edge.http_body_timeout_secs, 2);
        assert_eq!(s.edge.max_body_bytes_in_flight, 2_000_000);
        assert_eq!(s.edge.http_request_timeout_secs, 30, "default kept");
        Ok(())
    });
    let mut s = Settings::defaults();
    s.edge.max_body_bytes_in_flight = s.max_body_bytes - 1;
    let e = s
        .validate_ingest()
        .expect_err("a full-size body never fits");
    assert!(
        e.to_string().contains("CONNECTOR_MAX_BODY_BYTES_IN_FLIGHT"),
        "{e}"
    );
    let mut s = Settings::defaults();
    s.edge.http_max_requests = 0;
    assert!(s.validate_console().is_err());
    let mut s = Settings::defaults();
    s.edge.http_request_timeout_secs = 2;
    assert!(
        s.validate_ingest().is_err(),
        "shorter than the broker's wait"
    );
}
