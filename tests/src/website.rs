//! The connector website under test: a [`WorkerEnv`] (sandbox, fresh
//! database, worker) plus ingest's router configured for the website, driven
//! without a socket (`tower::ServiceExt::oneshot`).

use axum::{
    Router,
    body::{Body, to_bytes},
    http::{HeaderMap, Method, Request, StatusCode, header},
};
use secrecy::SecretString;
use serde_json::Value;
use shared::config::Settings;
use tower::ServiceExt;

use crate::e2e::WorkerEnv;
use sandbox::{PortalSeed, SandboxConfig};

/// The operator token the tests configure.
pub const OPERATOR_TOKEN: &str = "operator-token-for-tests";
/// The public URL the route tests pretend to be served at.
pub const PUBLIC_URL: &str = "http://connector.test";

/// An answer: status, headers, body text.
pub struct Answer {
    /// Status.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// Body.
    pub body: String,
}

impl Answer {
    /// The body as JSON (Null when it is not).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    /// `Location`.
    pub fn location(&self) -> String {
        self.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    }

    /// The `name=value` of a `Set-Cookie` named `name`.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|c| c.starts_with(&format!("{name}=")))
            .map(|c| c.split(';').next().unwrap_or_default().to_owned())
    }
}

/// A logged-in browser: its session cookie and CSRF token.
#[derive(Debug, Clone)]
pub struct Login {
    /// `connector_session=...`.
    pub cookie: String,
    /// The session's CSRF token.
    pub csrf: String,
}

/// Website settings for `env` (public URL `public_url`).
pub fn website_settings(env: &WorkerEnv, public_url: &str) -> Settings {
    let mut s = env.settings.clone();
    s.public_url = Some(public_url.into());
    s.hubspot_authorize_url = format!("{}/oauth/authorize", env.sandbox.hubspot_url());
    s.admin_token = Some(SecretString::from(OPERATOR_TOKEN));
    s
}

/// The website over a worker environment.
pub struct WebEnv {
    /// Sandbox, database, worker.
    pub env: WorkerEnv,
    /// Ingest's router.
    pub app: Router,
}

impl WebEnv {
    /// Sandbox with portals 1001 and 1002, fresh database, the router.
    pub async fn start() -> anyhow::Result<Self> {
        let cfg = SandboxConfig {
            portals: vec![PortalSeed::sized(1001, 5), PortalSeed::sized(1002, 5)],
            ..SandboxConfig::default()
        };
        let env = WorkerEnv::start_with(cfg).await?;
        let mut s = website_settings(&env, PUBLIC_URL);
        // Nothing listens here: the website never needs the broker.
        s.amqp_url = "amqp://guest:guest@127.0.0.1:1/%2f".into();
        let app = ingest::app(ingest::AppState::from_settings(&s)?);
        Ok(Self { env, app })
    }

    /// Sends a request.
    pub async fn send(&self, req: Request<Body>) -> Answer {
        let resp = self
            .app
            .clone()
            .oneshot(req)
            .await
            .expect("the router is infallible");
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap_or_default();
        Answer {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    /// `GET path` with an optional cookie.
    pub async fn get(&self, path: &str, cookie: Option<&str>) -> Answer {
        let mut b = Request::get(path);
        if let Some(c) = cookie {
            b = b.header(header::COOKIE, c);
        }
        self.send(b.body(Body::empty()).expect("request")).await
    }

    /// `POST path` with a form (the CSRF field is up to the caller).
    pub async fn post_form(
        &self,
        path: &str,
        cookie: Option<&str>,
        fields: &[(&str, &str)],
    ) -> Answer {
        let mut b =
            Request::post(path).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        if let Some(c) = cookie {
            b = b.header(header::COOKIE, c);
        }
        let body = serde_urlencoded::to_string(fields).unwrap_or_default();
        self.send(b.body(Body::from(body)).expect("request")).await
    }

    /// A form post as `login`, with its CSRF token.
    pub async fn submit(&self, login: &Login, path: &str, fields: &[(&str, &str)]) -> Answer {
        let mut all = vec![("csrf", login.csrf.as_str())];
        all.extend_from_slice(fields);
        self.post_form(path, Some(&login.cookie), &all).await
    }

    /// A JSON API call. `auth`: `Bearer ...` or a login (cookie + CSRF header).
    pub async fn api(
        &self,
        method: Method,
        path: &str,
        auth: Auth<'_>,
        body: Option<Value>,
    ) -> Answer {
        let mut b = Request::builder().method(method).uri(path);
        match auth {
            Auth::None => {}
            Auth::Operator(t) => b = b.header(header::AUTHORIZATION, format!("Bearer {t}")),
            Auth::Session(l) => {
                b = b
                    .header(header::COOKIE, &l.cookie)
                    .header("x-csrf-token", &l.csrf);
            }
            Auth::SessionNoCsrf(l) => b = b.header(header::COOKIE, &l.cookie),
        }
        let body = match body {
            Some(v) => {
                b = b.header(header::CONTENT_TYPE, "application/json");
                Body::from(v.to_string())
            }
            None => Body::empty(),
        };
        self.send(b.body(body).expect("request")).await
    }

    /// The install flow for `portal`: start → (the user approves on the
    /// authorize page) → callback. Returns the session.
    pub async fn install(&self, portal: u64) -> anyhow::Result<Login> {
        let start = self.get("/oauth/start", None).await;
        anyhow::ensure!(
            start.status == StatusCode::SEE_OTHER || start.status.is_redirection(),
            "start: {}",
            start.status
        );
        let url = url::Url::parse(&start.location())?;
        let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
        let state = q.get("state").cloned().unwrap_or_default();
        let redirect = q.get("redirect_uri").cloned().unwrap_or_default();
        let state_cookie = start.cookie("connector_oauth_state").unwrap_or_default();
        let code = self
            .env
            .sandbox
            .hubspot()
            .authorize(portal, &redirect, &state)?;
        let cb = self
            .get(
                &format!("/oauth/callback?code={code}&state={state}"),
                Some(&state_cookie),
            )
            .await;
        anyhow::ensure!(
            cb.status.is_redirection(),
            "callback: {} {}",
            cb.status,
            cb.body
        );
        let cookie = cb.cookie("connector_session").unwrap_or_default();
        let info = self
            .api(
                Method::GET,
                "/api/v1/session",
                Auth::SessionNoCsrf(&Login {
                    cookie: cookie.clone(),
                    csrf: String::new(),
                }),
                None,
            )
            .await;
        let csrf = info.json()["csrf_token"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        Ok(Login { cookie, csrf })
    }

    /// Drops the database.
    pub async fn finish(self) {
        self.env.finish().await;
    }
}

/// How an API call authenticates.
pub enum Auth<'a> {
    /// Not at all.
    None,
    /// `Authorization: Bearer {token}`.
    Operator(&'a str),
    /// Session cookie and `X-CSRF-Token`.
    Session(&'a Login),
    /// Session cookie without the CSRF header.
    SessionNoCsrf(&'a Login),
}
