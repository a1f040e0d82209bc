//! The connector website under test: a [`WorkerEnv`] (sandbox, fresh
//! database, worker) plus the console's routers (website and `/api/v1`,
//! admin API) configured for it, driven without a socket
//! (`tower::ServiceExt::oneshot`). Replays requested there are carried out
//! by a worker running in the test ([`WebEnv::carry_out_replays`]).

use axum::{
    Router,
    body::{Body, to_bytes},
    http::{HeaderMap, Method, Request, StatusCode, header},
};
use secrecy::SecretString;
use serde_json::Value;
use shared::{config::Settings, db::replays::ReplayRequestRow};
use tower::ServiceExt;

use crate::support::e2e::{WorkerEnv, eventually, spawn_worker};
use sandbox::{PortalSeed, SandboxConfig};

/// The operator token the tests configure.
pub const OPERATOR_TOKEN: &str = "operator-token-for-tests-0123456789abcdef";
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
    /// The console's website and `/api/v1` router.
    pub app: Router,
    /// The console's admin API router (operator token [`OPERATOR_TOKEN`]).
    pub admin: Router,
}

impl WebEnv {
    /// Sandbox with portals 1001 and 1002, fresh database, the router.
    pub async fn start() -> anyhow::Result<Self> {
        let cfg = SandboxConfig {
            portals: vec![PortalSeed::sized(1001, 5), PortalSeed::sized(1002, 5)],
            ..SandboxConfig::default()
        };
        let env = WorkerEnv::start_with(cfg).await?;
        // The broker (the environment's queue prefix) only carries replay
        // requests to the worker.
        let s = website_settings(&env, PUBLIC_URL);
        let app = console::app(console::AppState::from_settings(&s));
        let admin = console::admin::router(console::admin::AdminState::from_settings(&s));
        Ok(Self { env, app, admin })
    }

    /// Runs a worker until every replay request is finished (at most 30 s),
    /// then stops it; returns the requests, latest first.
    pub async fn carry_out_replays(&self) -> anyhow::Result<Vec<ReplayRequestRow>> {
        let mut settings = self.env.settings.clone();
        // Nothing but the replays: no outcome polling behind the test's back.
        settings.outcomes_poll = false;
        let worker = spawn_worker(&self.env, settings);
        let pool = &self.env.pool;
        let done = eventually(
            std::time::Duration::from_secs(30),
            "the replay requests",
            || async {
                let all = shared::db::replays::list(pool, None, 1000).await?;
                Ok(all.iter().all(ReplayRequestRow::finished))
            },
        )
        .await;
        worker.stop().await?;
        done?;
        Ok(shared::db::replays::list(pool, None, 1000).await?)
    }

    /// Sends a request: `/admin/...` to the admin API's router (its own
    /// listener in production), anything else to the website's.
    pub async fn send(&self, req: Request<Body>) -> Answer {
        let router = if req.uri().path().starts_with("/admin/") {
            &self.admin
        } else {
            &self.app
        };
        let resp = router
            .clone()
            .oneshot(req)
            .await
            .expect("the router is infallible");
        answer(resp).await
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
        self.install_as(portal, sandbox::HubUser::default()).await
    }

    /// As [`Self::install`], approved by HubSpot user `user`.
    pub async fn install_as(&self, portal: u64, user: sandbox::HubUser) -> anyhow::Result<Login> {
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
            .authorize_as(portal, &redirect, &state, user)?;
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

/// Waits (at most 30 s) until replay request `id` is finished; returns it.
pub async fn replay_finished(
    pool: &sqlx::PgPool,
    id: uuid::Uuid,
) -> anyhow::Result<ReplayRequestRow> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        if let Some(r) = shared::db::replays::get(pool, id).await?
            && r.finished()
        {
            return Ok(r);
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "replay request {id} not finished in 30 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Reads a response into an [`Answer`].
pub async fn answer(resp: axum::response::Response) -> Answer {
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
