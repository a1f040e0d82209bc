//! Operator authentication, shared by the admin API and the website's JSON
//! API: a bearer token from the configured set ([`OperatorTokens`], each
//! under a name the audit log records), failed attempts counted per client
//! and globally ([`limiter`]), logged and counted in metrics.

pub mod limiter;

use std::{
    net::{IpAddr, SocketAddr},
    time::{Duration, Instant},
};

use axum::{
    extract::{ConnectInfo, Request},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use shared::{
    config::{ConfigError, OperatorTokens, Settings},
    http::ApiError,
};

use limiter::{FailureLimiter, Limits, Scope, client_key};

/// What an operator must set to turn operator access on.
pub const HOW_TO_ENABLE: &str = "set CONNECTOR_ADMIN_TOKEN, CONNECTOR_ADMIN_TOKENS or \
     CONNECTOR_ADMIN_TOKENS_FILE (tokens of at least 32 bytes)";

/// Why a request was not let through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Missing or wrong token (the same answer whatever was sent).
    Invalid,
    /// Too many failures: refused without looking at the token.
    LockedOut {
        /// Until the lockout ends.
        retry_after: Duration,
        /// Whose failures.
        scope: Scope,
    },
}

/// The tokens and the failure counts of one listener.
#[derive(Debug)]
pub struct OperatorAuth {
    tokens: OperatorTokens,
    limiter: FailureLimiter,
    /// `admin` or `api`: logs and metric labels.
    surface: &'static str,
}

impl OperatorAuth {
    /// From the settings; `Ok(None)` when no token is set (operator access
    /// off), `Err` when the tokens are misconfigured.
    pub fn from_settings(s: &Settings, surface: &'static str) -> Result<Option<Self>, ConfigError> {
        let tokens = s.operator_tokens()?;
        if tokens.is_empty() {
            return Ok(None);
        }
        let limits = Limits {
            per_client: s.admin_auth_max_failures.max(1),
            global: s.admin_auth_max_failures_global.max(1),
            window: Duration::from_secs(s.admin_auth_lockout_secs.max(1)),
        };
        Ok(Some(Self {
            tokens,
            limiter: FailureLimiter::new(limits),
            surface,
        }))
    }

    /// The name of the operator whose token `bearer` is (no counting: for a
    /// request [`Self::check`] let through already).
    pub fn name_of(&self, bearer: &str) -> Option<&str> {
        self.tokens.authenticate(bearer)
    }

    /// Checks `bearer` (absent: no or a non-Bearer `Authorization`) from
    /// peer `client`; a failure is counted, logged and measured.
    pub fn check(&self, client: Option<IpAddr>, bearer: Option<&str>) -> Result<&str, Refusal> {
        let key = client_key(client);
        let now = Instant::now();
        let outcome = |o: &'static str| {
            metrics::counter!("console_operator_auth_total", "surface" => self.surface, "outcome" => o)
                .increment(1);
        };
        if let Some((retry_after, scope)) = self.limiter.locked(key, now) {
            outcome("locked_out");
            return Err(Refusal::LockedOut { retry_after, scope });
        }
        if let Some(name) = bearer.and_then(|b| self.tokens.authenticate(b)) {
            outcome("ok");
            return Ok(name);
        }
        outcome(if bearer.is_some() {
            "invalid"
        } else {
            "missing"
        });
        let client_text = client.map_or_else(|| "unknown".to_owned(), |c| c.to_string());
        tracing::warn!(surface = self.surface, client = %client_text, "operator token missing or wrong");
        for scope in self.limiter.fail(key, now) {
            metrics::counter!("console_operator_lockouts_total", "surface" => self.surface, "scope" => scope.as_str())
                .increment(1);
            let limits = self.limiter.limits();
            tracing::warn!(
                surface = self.surface,
                client = %client_text,
                scope = scope.as_str(),
                lockout_secs = limits.window.as_secs(),
                "too many failed operator-token attempts: locked out"
            );
        }
        Err(Refusal::Invalid)
    }
}

/// The peer address of a request (axum's `ConnectInfo`), when served with it.
pub fn peer(req: &Request) -> Option<IpAddr> {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
}

/// The token of `Authorization: Bearer <token>`; `None` without one (or
/// when it is not valid UTF-8).
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

/// The answer to a refusal: 401 with `WWW-Authenticate`, or 429 with
/// `Retry-After`; `invalid` is the 401's error code.
pub fn refusal_response(r: Refusal, invalid: &'static str) -> Response {
    match r {
        Refusal::Invalid => {
            let mut resp = ApiError::new(
                StatusCode::UNAUTHORIZED,
                invalid,
                "missing or wrong operator token (Authorization: Bearer ...)",
            )
            .into_response();
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            resp
        }
        Refusal::LockedOut { retry_after, scope } => {
            let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
            let whose = match scope {
                Scope::Client => "from this client",
                Scope::Global => "from all clients",
            };
            let mut resp = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_failures",
                format!("too many failed operator-token attempts {whose}; try again in {secs} s"),
            )
            .into_response();
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
            resp
        }
    }
}
