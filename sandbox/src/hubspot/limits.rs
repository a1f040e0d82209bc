//! The gate in front of the CRM API: faults (latency, errors, outages),
//! bearer authentication, scopes, and the per-portal rolling rate limit with
//! HubSpot's headers and 429 body.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::oauth::TokenCheck;
use super::{FakeHubSpot, ObjectType, errors};
use crate::lock;

const WINDOW: Duration = Duration::from_secs(10);
const SEARCH_PER_SECOND: usize = 5;
const DAILY_LIMIT: u64 = 250_000;

/// Fault injection on the HubSpot side.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FaultSettings {
    /// Added before every API answer.
    #[serde(default, with = "crate::millis")]
    pub latency: Duration,
    /// Share (0..=1) of API requests answered 500.
    #[serde(default)]
    pub error_rate: f64,
    /// API answers 503 until then.
    #[serde(skip)]
    pub outage_until: Option<Instant>,
    /// The next requests whose path contains the fragment answer 503 (one
    /// per count).
    #[serde(skip)]
    pub failing_paths: Vec<(String, u32)>,
}

#[derive(Debug, Default)]
struct Counters {
    window: VecDeque<Instant>,
    search: VecDeque<Instant>,
    api_calls: u64,
    rate_limited: u64,
    daily: u64,
}

pub(crate) struct Limits {
    per_10s: Option<u32>,
    faults: FaultSettings,
    portals: HashMap<u64, Counters>,
}

/// Who is calling, put in the request's extensions by the gate.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub(crate) portal: u64,
}

enum Verdict {
    Allowed { max: u32, remaining: u32 },
    Unlimited,
    Limited { max: u32, policy: &'static str },
}

impl Limits {
    pub(crate) fn new(per_10s: Option<u32>, latency: Duration) -> Limits {
        Limits {
            per_10s,
            faults: FaultSettings {
                latency,
                ..Default::default()
            },
            portals: HashMap::new(),
        }
    }

    fn admit(&mut self, portal: u64, search: bool) -> Verdict {
        let now = Instant::now();
        let per_10s = self.per_10s;
        let c = self.portals.entry(portal).or_default();
        c.api_calls += 1;
        if search {
            // Search has its own limit (5/s) and sends no rate-limit headers.
            while c
                .search
                .front()
                .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(1))
            {
                c.search.pop_front();
            }
            if per_10s.is_some() && c.search.len() >= SEARCH_PER_SECOND {
                c.rate_limited += 1;
                return Verdict::Limited {
                    max: SEARCH_PER_SECOND as u32,
                    policy: "SECONDLY",
                };
            }
            c.search.push_back(now);
            return Verdict::Unlimited;
        }
        let Some(max) = per_10s else {
            c.daily += 1;
            return Verdict::Unlimited;
        };
        while c
            .window
            .front()
            .is_some_and(|t| now.duration_since(*t) >= WINDOW)
        {
            c.window.pop_front();
        }
        if c.window.len() >= max as usize {
            c.rate_limited += 1;
            return Verdict::Limited {
                max,
                policy: "TEN_SECONDLY_ROLLING",
            };
        }
        c.window.push_back(now);
        c.daily += 1;
        Verdict::Allowed {
            max,
            remaining: max - c.window.len() as u32,
        }
    }
}

fn bearer(req: &Request) -> Option<String> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
}

/// The scopes a CRM path needs (any one of each inner list).
fn required_scopes(path: &str) -> Vec<String> {
    let seg: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let types: Vec<ObjectType> = match seg.as_slice() {
        ["crm", "v3", "objects", t, ..] => {
            vec![ObjectType::parse(t)].into_iter().flatten().collect()
        }
        ["crm", "v4", "objects", from, _, "associations", to, ..]
        | ["crm", "v4", "associations", from, to, ..] => {
            [ObjectType::parse(from), ObjectType::parse(to)]
                .into_iter()
                .flatten()
                .collect()
        }
        ["crm", "v3", "pipelines", ..] => vec![ObjectType::Deals],
        // HubSpot's account information needs the `oauth` scope.
        ["account-info", ..] => return vec!["oauth".into()],
        ["crm", "v3", "properties", t, ..] => {
            return match ObjectType::parse(t) {
                Some(ObjectType::LineItems) | None => vec!["crm.objects.line_items.read".into()],
                Some(t) => vec![format!("crm.schemas.{}.read", t.as_path())],
            };
        }
        _ => Vec::new(),
    };
    types
        .into_iter()
        .map(|t| format!("crm.objects.{}.read", t.as_path()))
        .collect()
}

fn set_header(resp: &mut Response, name: &'static str, value: impl ToString) {
    if let Ok(v) = HeaderValue::from_str(&value.to_string()) {
        resp.headers_mut().insert(name, v);
    }
}

/// Middleware on every CRM route.
pub(crate) async fn gate(State(hub): State<FakeHubSpot>, mut req: Request, next: Next) -> Response {
    let faults = lock(&hub.state.limits).faults.clone();
    if !faults.latency.is_zero() {
        tokio::time::sleep(faults.latency).await;
    }
    if faults.outage_until.is_some_and(|t| Instant::now() < t) {
        return errors::error(
            StatusCode::SERVICE_UNAVAILABLE,
            "SERVICE_UNAVAILABLE",
            "Service Unavailable",
            None,
        );
    }
    if faults
        .failing_paths
        .iter()
        .any(|(f, n)| *n > 0 && req.uri().path().contains(f.as_str()))
    {
        let mut limits = lock(&hub.state.limits);
        let path = req.uri().path();
        if let Some((_, n)) = limits
            .faults
            .failing_paths
            .iter_mut()
            .find(|(f, n)| *n > 0 && path.contains(f.as_str()))
        {
            *n -= 1;
            return errors::error(
                StatusCode::SERVICE_UNAVAILABLE,
                "SERVICE_UNAVAILABLE",
                "Service Unavailable",
                None,
            );
        }
    }
    if faults.error_rate > 0.0 && rand::rng().random_bool(faults.error_rate.clamp(0.0, 1.0)) {
        return errors::error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL_ERROR",
            "internal error",
            None,
        );
    }
    let Some(token) = bearer(&req) else {
        return errors::unauthenticated();
    };
    let private_portal = lock(&hub.state.portals)
        .values()
        .find(|p| p.private_app_token.as_deref() == Some(token.as_str()))
        .map(|p| p.id);
    let (portal, scopes) = match private_portal {
        Some(portal) => (portal, None),
        None => match lock(&hub.state.oauth).check_access(&token) {
            TokenCheck::Valid { portal, scopes } => (portal, scopes),
            TokenCheck::Expired { minutes_ago } => return errors::expired(minutes_ago),
            TokenCheck::Unknown => return errors::unauthenticated(),
        },
    };
    let search = req.uri().path().ends_with("/search");
    let verdict = lock(&hub.state.limits).admit(portal, search);
    let mut resp = match verdict {
        Verdict::Limited { policy, .. } => errors::rate_limited(policy),
        _ => {
            let required = required_scopes(req.uri().path());
            if let Some(granted) = &scopes
                && required.iter().any(|r| !granted.contains(r))
            {
                return errors::missing_scopes(&required);
            }
            req.extensions_mut().insert(Caller { portal });
            next.run(req).await
        }
    };
    match verdict {
        Verdict::Allowed { max, remaining } => {
            set_header(&mut resp, "X-HubSpot-RateLimit-Max", max);
            set_header(&mut resp, "X-HubSpot-RateLimit-Remaining", remaining);
            set_header(
                &mut resp,
                "X-HubSpot-RateLimit-Interval-Milliseconds",
                WINDOW.as_millis(),
            );
        }
        Verdict::Limited {
            max,
            policy: "TEN_SECONDLY_ROLLING",
        } => {
            set_header(&mut resp, "X-HubSpot-RateLimit-Max", max);
            set_header(&mut resp, "X-HubSpot-RateLimit-Remaining", 0);
            set_header(
                &mut resp,
                "X-HubSpot-RateLimit-Interval-Milliseconds",
                WINDOW.as_millis(),
            );
        }
        _ => {}
    }
    if private_portal.is_some() && !search {
        let daily = lock(&hub.state.limits)
            .portals
            .get(&portal)
            .map_or(0, |c| c.daily);
        set_header(&mut resp, "X-HubSpot-RateLimit-Daily", DAILY_LIMIT);
        set_header(
            &mut resp,
            "X-HubSpot-RateLimit-Daily-Remaining",
            DAILY_LIMIT.saturating_sub(daily),
        );
    }
    resp
}

impl FakeHubSpot {
    /// Authenticated CRM API requests made for `portal` (429s included).
    pub fn api_calls(&self, portal: u64) -> u64 {
        lock(&self.state.limits)
            .portals
            .get(&portal)
            .map_or(0, |c| c.api_calls)
    }

    /// Requests for `portal` answered 429.
    pub fn rate_limited(&self, portal: u64) -> u64 {
        lock(&self.state.limits)
            .portals
            .get(&portal)
            .map_or(0, |c| c.rate_limited)
    }

    /// Sets the per-portal budget per rolling 10 s (`None`: unlimited).
    pub fn set_rate_limit(&self, per_10s: Option<u32>) {
        lock(&self.state.limits).per_10s = per_10s;
    }

    /// Delay added to every API answer.
    pub fn set_latency(&self, latency: Duration) {
        lock(&self.state.limits).faults.latency = latency;
    }

    /// Share (0..=1) of API requests answered 500.
    pub fn set_error_rate(&self, rate: f64) {
        lock(&self.state.limits).faults.error_rate = rate;
    }

    /// Every API request answers 503 for `duration` from now.
    pub fn outage(&self, duration: Duration) {
        lock(&self.state.limits).faults.outage_until = Some(Instant::now() + duration);
    }

    /// The next `count` API requests whose path contains `fragment` answer
    /// 503 (e.g. `"/associations/"`: only association reads fail).
    pub fn fail_next_on(&self, fragment: &str, count: u32) {
        lock(&self.state.limits)
            .faults
            .failing_paths
            .push((fragment.to_owned(), count));
    }

    /// The current fault settings.
    pub fn faults(&self) -> FaultSettings {
        lock(&self.state.limits).faults.clone()
    }

    /// Resets the API-call and 429 counters and the rate windows.
    pub fn reset_counters(&self) {
        lock(&self.state.limits).portals.clear();
    }
}
