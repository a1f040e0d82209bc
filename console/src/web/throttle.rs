//! Per-portal rate limits on the website's costly actions, so that one
//! tenant cannot starve the others of the website's database connections
//! or of its HubSpot and impact.com budgets: a token bucket per portal and
//! kind of action, keyed by the (verified) session's portal. Over the
//! limit, the answer is 429 with `Retry-After`, as a page or, under
//! `/api/`, as JSON. The operator token is not limited.
//!
//! | action | burst | sustained |
//! |---|---|---|
//! | saves (settings, triggers, mappings, adjustments, deletion) | 30 | 1 every 2 s |
//! | previews | 10 | 1 every 3 s |
//! | replays | 10 | 1 every 3 s |
//! | property-list loads from HubSpot | 5 | 1 every 6 s |

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use axum::{
    Json,
    extract::{Request, State},
    http::{HeaderValue, Method, StatusCode, header},
    middleware::Next,
    response::{Html, IntoResponse, Response},
};
use domain::events::PortalId;
use serde_json::json;

use super::session;
use crate::AppState;

/// A kind of limited action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// A configuration change (or the account's deletion).
    Save,
    /// A preview (fetches a HubSpot record).
    Preview,
    /// A replay request.
    Replay,
    /// Loading a property list from HubSpot.
    Properties,
}

impl Action {
    /// (burst, one more token every).
    pub fn limit(self) -> (u32, Duration) {
        match self {
            Self::Save => (30, Duration::from_secs(2)),
            Self::Preview | Self::Replay => (10, Duration::from_secs(3)),
            Self::Properties => (5, Duration::from_secs(6)),
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::Save => "saves",
            Self::Preview => "previews",
            Self::Replay => "replays",
            Self::Properties => "property-list loads",
        }
    }

    /// The action a request is, if it is limited.
    pub fn of(method: &Method, path: &str, query: Option<&str>) -> Option<Self> {
        let api = path.strip_prefix("/api/v1/portals/");
        let tail = api.and_then(|p| p.split_once('/').map(|(_, t)| t));
        match (method, path, api, tail) {
            (&Method::POST, "/preview", ..) | (&Method::POST, _, _, Some("preview")) => {
                Some(Self::Preview)
            }
            (&Method::POST, "/activity/replay", ..) => Some(Self::Replay),
            (&Method::POST, p, None, _)
                if p.starts_with("/conversions/") && p.ends_with("/send-again") =>
            {
                Some(Self::Replay)
            }
            (&Method::POST, _, _, Some(t)) if t.ends_with("/replay") => Some(Self::Replay),
            (&Method::POST, "/mappings/refresh", ..) => Some(Self::Properties),
            (&Method::GET, _, _, Some(t))
                if t.starts_with("properties/")
                    && query.is_some_and(|q| q.split('&').any(|p| p == "refresh=true")) =>
            {
                Some(Self::Properties)
            }
            (&Method::POST, "/settings" | "/account/delete", ..) => Some(Self::Save),
            (&Method::POST, p, None, _)
                if p.starts_with("/triggers") || p.starts_with("/mappings") =>
            {
                Some(Self::Save)
            }
            (&Method::PUT | &Method::DELETE, _, Some(_), _) => Some(Self::Save),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// The buckets, per portal and action.
#[derive(Debug, Default)]
pub struct Throttle {
    buckets: Mutex<HashMap<(PortalId, Action), Bucket>>,
}

impl Throttle {
    /// Takes one token of `portal`'s `action` bucket, or says how long
    /// until one is there.
    pub fn take(&self, portal: PortalId, action: Action) -> Result<(), Duration> {
        self.take_at(portal, action, Instant::now())
    }

    fn take_at(&self, portal: PortalId, action: Action, now: Instant) -> Result<(), Duration> {
        let (burst, every) = action.limit();
        let burst = f64::from(burst);
        let mut all = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if all.len() > 10_000 {
            // Full buckets are the default: forget them.
            all.retain(|(_, a), b| {
                let (cap, every) = a.limit();
                b.tokens + now.duration_since(b.at).as_secs_f64() / every.as_secs_f64()
                    < f64::from(cap)
            });
        }
        let b = all.entry((portal, action)).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        let refill = now.duration_since(b.at).as_secs_f64() / every.as_secs_f64();
        b.tokens = (b.tokens + refill).min(burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(every.mul_f64(1.0 - b.tokens))
        }
    }
}

/// The middleware: limits the session's portal's actions.
pub async fn limit(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Ok(site) = &state.website else {
        return next.run(req).await;
    };
    let Some(action) = Action::of(req.method(), req.uri().path(), req.uri().query()) else {
        return next.run(req).await;
    };
    // Sessions only: an operator's bearer token is not limited, and a
    // request without a valid session is refused by the route anyway.
    // A good signature is enough to name the portal (no database read):
    // a cookie of an ended session is refused by the route.
    let portal = session::cookie(req.headers(), site.cookies.session())
        .and_then(|v| site.sessions.check(v))
        .map(|s| s.portal);
    let Some(portal) = portal else {
        return next.run(req).await;
    };
    match site.throttle.take(portal, action) {
        Ok(()) => next.run(req).await,
        Err(wait) => {
            tracing::info!(%portal, action = action.label(), "website action rate-limited");
            too_many(req.uri().path().starts_with("/api/"), action, wait)
        }
    }
}

fn too_many(api: bool, action: Action, wait: Duration) -> Response {
    let secs = wait.as_secs() + 1;
    let (burst, every) = action.limit();
    let message = format!(
        "Too many {} for this portal: at most {burst} at once, then one every {} s. Try again in {secs} s.",
        action.label(),
        every.as_secs()
    );
    metrics::counter!("console_rate_limited_total", "action" => action.label()).increment(1);
    let mut resp = if api {
        (
            StatusCode::TOO_MANY_REQUESTS,
            Json(json!({ "error": "rate_limited", "message": message, "retry_after": secs })),
        )
            .into_response()
    } else {
        (
            StatusCode::TOO_MANY_REQUESTS,
            Html(format!(
                "<!doctype html><title>Slow down</title><h1>Too many requests</h1>\
                 <p class=error id=rate_limited>{}</p><p><a href=\"/settings\">Back</a></p>",
                super::templates::escape(&message)
            )),
        )
            .into_response()
    };
    if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_refills_and_portals_are_separate() {
        let t = Throttle::default();
        let now = Instant::now();
        let (a, b) = (PortalId(1), PortalId(2));
        for _ in 0..10 {
            assert!(t.take_at(a, Action::Preview, now).is_ok());
        }
        let wait = t.take_at(a, Action::Preview, now).expect_err("limited");
        assert!(wait <= Duration::from_secs(3), "{wait:?}");
        assert!(t.take_at(b, Action::Preview, now).is_ok(), "per portal");
        assert!(t.take_at(a, Action::Save, now).is_ok(), "per action");
        let later = now + Duration::from_secs(3);
        assert!(t.take_at(a, Action::Preview, later).is_ok(), "refilled");
        assert!(t.take_at(a, Action::Preview, later).is_err());
    }

    #[test]
    fn requests_are_classified() {
        let of = |m: Method, p: &str, q: Option<&str>| Action::of(&m, p, q);
        assert_eq!(of(Method::POST, "/preview", None), Some(Action::Preview));
        assert_eq!(of(Method::GET, "/preview", None), None);
        assert_eq!(
            of(
                Method::POST,
                "/api/v1/portals/1/dead-letters/5/replay",
                None
            ),
            Some(Action::Replay)
        );
        assert_eq!(
            of(Method::PUT, "/api/v1/portals/1/mappings", None),
            Some(Action::Save)
        );
        assert_eq!(
            of(Method::DELETE, "/api/v1/portals/1", None),
            Some(Action::Save)
        );
        assert_eq!(of(Method::POST, "/mappings/add", None), Some(Action::Save));
        assert_eq!(
            of(
                Method::GET,
                "/api/v1/portals/1/properties/deals",
                Some("refresh=true")
            ),
            Some(Action::Properties)
        );
        assert_eq!(
            of(Method::GET, "/api/v1/portals/1/properties/deals", None),
            None
        );
        assert_eq!(of(Method::POST, "/logout", None), None);
        assert_eq!(of(Method::GET, "/api/v1/portals/1", None), None);
    }
}
