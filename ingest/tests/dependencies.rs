//! Ingest is the thin webhook edge: no worker, no website, no templates, no
//! database driver or HTTP client of its own (checked on the graph `cargo
//! tree` resolves: the per-portal webhook secrets it reads in the
//! background go through `shared::db`, like every SQL statement), and no
//! website route.

use std::collections::BTreeSet;

use axum::{
    body::Body,
    http::{Request, StatusCode},
};
use secrecy::SecretString;
use shared::config::Settings;
use tower::ServiceExt;

/// Package names of `ingest`'s direct normal dependencies, and of every
/// package its normal (non-dev) dependency graph reaches, as `cargo tree`
/// resolves them for this platform.
fn graph() -> (BTreeSet<String>, BTreeSet<String>) {
    let out = std::process::Command::new(env!("CARGO"))
        .args([
            "tree",
            "-p",
            "ingest",
            "-e",
            "normal",
            "--prefix",
            "depth",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (mut direct, mut reached) = (BTreeSet::new(), BTreeSet::new());
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        // `2sqlx v0.9.0`: the depth, then the package name.
        let rest = line.trim_start_matches(|c: char| c.is_ascii_digit());
        let depth = &line[..line.len() - rest.len()];
        let Some(name) = rest.split_whitespace().next() else {
            continue;
        };
        if depth == "1" {
            direct.insert(name.to_owned());
        }
        reached.insert(name.to_owned());
    }
    (direct, reached)
}

#[test]
fn ingest_depends_on_neither_the_worker_nor_the_website() {
    let (direct, reached) = graph();
    for forbidden in ["worker", "console", "minijinja"] {
        assert!(
            !reached.contains(forbidden),
            "ingest's dependency graph reaches {forbidden}"
        );
    }
    for forbidden in ["sqlx", "reqwest", "minijinja"] {
        assert!(
            !direct.contains(forbidden),
            "ingest depends on {forbidden} directly: {direct:?}"
        );
    }
    assert!(
        direct.contains("shared") && direct.contains("domain"),
        "{direct:?}"
    );
}

#[tokio::test]
async fn the_website_and_the_apis_are_not_served_by_ingest() {
    let mut s = Settings::defaults();
    s.amqp_url = "amqp://guest:guest@127.0.0.1:1/%2f".into();
    s.hubspot_client_secret = Some(SecretString::from("dependencies-test-secret"));
    s.admin_token = Some(SecretString::from("operator-token-0123456789abcdef-xyz"));
    let app = ingest::app(ingest::AppState::from_settings(&s).expect("valid settings"));
    for path in ["/login", "/api/v1/openapi.json", "/admin/api/dead-letters"] {
        let resp = app
            .clone()
            .oneshot(Request::get(path).body(Body::empty()).expect("request"))
            .await
            .expect("infallible");
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{path}");
    }
}
