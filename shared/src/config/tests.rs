use super::*;
use secrecy::ExposeSecret;

#[test]
fn an_empty_operator_token_is_no_token_and_a_short_one_stops_the_console() {
    let mut s = Settings::defaults();
    assert!(s.operator_tokens().expect("valid").is_empty());
    for empty in ["", "   "] {
        s.admin_token = Some(SecretString::from(empty));
        assert!(s.operator_tokens().expect("valid").is_empty(), "{empty:?}");
        assert!(s.validate_console().is_ok());
        // No token, no address: no admin listener.
        assert_eq!(
            s.admin_listen_addr(&s.operator_tokens().expect("valid")),
            None
        );
    }
    s.admin_token = Some(SecretString::from("t"));
    let err = s.validate_console().expect_err("too short");
    assert!(err.to_string().contains("CONNECTOR_ADMIN_TOKEN"), "{err}");
    s.admin_token = Some(SecretString::from("t".repeat(32)));
    assert!(s.validate_console().is_ok());
    s.console_public_url = Some("ftp://x".into());
    assert!(s.validate_console().is_err());
}

#[test]
fn the_admin_listener_is_loopback_by_default_and_never_shares_a_listener() {
    let mut s = Settings::defaults();
    s.admin_token = Some(SecretString::from("t".repeat(32)));
    let tokens = s.operator_tokens().expect("valid");
    assert_eq!(
        s.admin_listen_addr(&tokens).map(|a| a.to_string()),
        Some("127.0.0.1:8091".into())
    );
    assert!(s.validate_console().is_ok());
    // An address without a token: the listener (for /metrics), API off.
    let mut bare = Settings::defaults();
    bare.admin_addr = Some("127.0.0.1:9000".parse().expect("addr"));
    assert!(bare.admin_listen_addr(&OperatorTokens::default()).is_some());
    for clash in ["127.0.0.1:8090", "0.0.0.0:8090", "127.0.0.1:8080"] {
        s.admin_addr = Some(clash.parse().expect("addr"));
        let err = s.validate_console().expect_err(clash);
        assert!(err.to_string().contains("CONNECTOR_ADMIN_ADDR"), "{err}");
    }
    // Port 0 picks a free port: never the same socket.
    s.admin_addr = Some("127.0.0.1:0".parse().expect("addr"));
    s.ingest_addr = "127.0.0.1:0".parse().expect("addr");
    assert!(s.validate_console().is_ok());
    s.admin_auth_lockout_secs = 0;
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
#[allow(clippy::result_large_err)] // figment's Jail API
fn the_app_id_is_read_as_text_from_a_file_number_or_the_environment() {
    figment::Jail::expect_with(|jail| {
        jail.create_file("c.toml", "hubspot_app_id = 1234567\n")?;
        let s: Settings =
            Settings::figment(Some(Path::new("c.toml")), std::iter::empty()).extract()?;
        assert_eq!(s.hubspot_app_id.as_deref(), Some("1234567"));
        jail.set_env("CONNECTOR_HUBSPOT_APP_ID", "my-app");
        jail.set_env("CONNECTOR_HUBSPOT_DEVELOPER_API_KEY", "0042");
        let s: Settings = Settings::figment(None, std::env::vars()).extract()?;
        // Malformed, yet loaded: only `worker subscriptions --apply` reads it.
        assert_eq!(s.hubspot_app_id.as_deref(), Some("my-app"));
        let key = s
            .hubspot_developer_api_key
            .as_ref()
            .map(|k| k.expose_secret().to_owned());
        assert_eq!(key.as_deref(), Some("0042"));
        assert_eq!(Settings::defaults().hubspot_app_id, None);
        Ok(())
    });
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

#[test]
#[allow(clippy::result_large_err)] // figment's Jail API
fn the_direct_database_url_is_optional_and_checked_by_every_process() {
    let mut s = Settings::defaults();
    assert_eq!(
        s.direct_database_url(),
        None,
        "unset: the main pool does it"
    );
    for same in ["", "  ", "postgres://postgres@127.0.0.1:5432/test"] {
        s.database_direct_url = Some(same.into());
        assert_eq!(s.direct_database_url(), None, "{same:?}");
    }
    s.database_url = "postgres://connector@pgbouncer:6432/connector".into();
    s.database_direct_url = Some(" postgres://connector@db:5432/connector ".into());
    assert_eq!(
        s.direct_database_url(),
        Some("postgres://connector@db:5432/connector")
    );
    s.webhook_secrets_db = true;
    s.validate_ingest().expect("a PostgreSQL URL");
    s.validate_console().expect("a PostgreSQL URL");
    s.validate_worker().expect("a PostgreSQL URL");
    for bad in [
        "db.example:5432/connector",
        "not a url",
        "postgres://u@db/connector?sslmode=sometimes",
    ] {
        s.database_direct_url = Some(bad.into());
        for err in [
            s.validate_ingest().expect_err(bad),
            s.validate_console().expect_err(bad),
            s.validate_worker().expect_err(bad),
        ] {
            let text = err.to_string();
            assert!(
                text.starts_with(
                    "configuration: CONNECTOR_DATABASE_DIRECT_URL: not a PostgreSQL URL"
                ),
                "{text}"
            );
            assert!(!text.contains('\n'), "one line: {text}");
        }
    }
    figment::Jail::expect_with(|jail| {
        jail.set_env("CONNECTOR_DATABASE_DIRECT_URL", "postgres://u@direct/db");
        let s: Settings = Settings::figment(None, std::env::vars()).extract()?;
        assert_eq!(s.direct_database_url(), Some("postgres://u@direct/db"));
        Ok(())
    });
}
