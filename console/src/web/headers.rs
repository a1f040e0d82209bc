//! The security headers of every website page and `/api/v1` answer, and the
//! site's one stylesheet (served from the binary, so the pages need no
//! inline style and the content security policy allows none).
//!
//! - `Content-Security-Policy`: nothing but the site's own stylesheet
//!   and its one small script (`/static/time.js`: times in the viewer's
//!   zone; the pages work without it) load (no inline script or style), forms post only to the
//!   site, and no other site may frame a page (`frame-ancestors 'none'`,
//!   with `X-Frame-Options: DENY` for older browsers): no clickjacking.
//! - `X-Content-Type-Options: nosniff`, `Referrer-Policy: no-referrer`
//!   (page URLs never leave the site in a `Referer`).
//! - `Strict-Transport-Security` when the public URL is https.
//! - `Cache-Control: no-store` on every page and answer but the stylesheet:
//!   they show a portal's conversions, dead letters, previews and settings,
//!   which no shared or browser cache may keep.
//!
//! A handler that sets one of these itself keeps its own value.

use axum::{
    Router,
    http::{HeaderName, HeaderValue, header},
    response::IntoResponse,
    routing::get,
};
use tower_http::set_header::SetResponseHeaderLayer;

/// The content security policy of every page and answer.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// HSTS when the site is served over https: a year.
pub const STRICT_TRANSPORT_SECURITY: &str = "max-age=31536000";

/// Where the stylesheet is served.
pub const STYLESHEET_PATH: &str = "/static/site.css";

const STYLESHEET: &str = include_str!("../../static/site.css");

/// Where the time script is served.
pub const TIME_SCRIPT_PATH: &str = "/static/time.js";

const TIME_SCRIPT: &str = include_str!("../../static/time.js");

/// The stylesheet's route (cacheable: it changes only with the binary).
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route(STYLESHEET_PATH, get(stylesheet))
        .route(TIME_SCRIPT_PATH, get(time_script))
}

async fn time_script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        TIME_SCRIPT,
    )
}

async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLESHEET,
    )
}

/// Adds the security headers to every answer of `router`; HSTS only when
/// `https` (the public URL's scheme).
pub fn secure(router: Router, https: bool) -> Router {
    let fixed: [(HeaderName, &'static str); 6] = [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ),
    ];
    let mut router = router;
    for (name, value) in fixed {
        router = router.layer(SetResponseHeaderLayer::if_not_present(
            name,
            HeaderValue::from_static(value),
        ));
    }
    if https {
        router = router.layer(SetResponseHeaderLayer::if_not_present(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(STRICT_TRANSPORT_SECURITY),
        ));
    }
    router
}

/// Whether `url` is https (the scheme compared without case: `HTTPS://`
/// is https too).
pub fn is_https(url: &str) -> bool {
    url::Url::parse(url.trim()).is_ok_and(|u| u.scheme() == "https")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_is_recognised_whatever_the_case() {
        assert!(is_https("https://connector.example"));
        assert!(is_https("HTTPS://Connector.Example/"));
        assert!(is_https(" HttpS://x.example"));
        assert!(!is_https("http://connector.example"));
        assert!(!is_https("connector.example"));
        assert!(!is_https("https-not-a-url"));
    }
}
