//! The page templates (`console/templates/*.html`), compiled into the binary.

use minijinja::Environment;

/// (name, source) of every template.
const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../../templates/base.html")),
    ("login.html", include_str!("../../templates/login.html")),
    (
        "settings.html",
        include_str!("../../templates/settings.html"),
    ),
    (
        "triggers.html",
        include_str!("../../templates/triggers.html"),
    ),
    (
        "mappings.html",
        include_str!("../../templates/mappings.html"),
    ),
    ("preview.html", include_str!("../../templates/preview.html")),
    (
        "activity.html",
        include_str!("../../templates/activity.html"),
    ),
    ("account.html", include_str!("../../templates/account.html")),
    (
        "dashboard.html",
        include_str!("../../templates/dashboard.html"),
    ),
    (
        "conversion.html",
        include_str!("../../templates/conversion.html"),
    ),
    (
        "dead_letter.html",
        include_str!("../../templates/dead_letter.html"),
    ),
    ("story.html", include_str!("../../templates/story.html")),
];

/// The environment with every template loaded; HTML auto-escaping is on.
pub fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
    env.add_filter("when", when);
    env.add_filter("exact", exact);
    for (name, source) in TEMPLATES {
        env.add_template(name, source)
            .expect("the bundled templates parse (checked by the route tests)");
    }
    env
}

/// `{{ t | when }}`: a `<time>` of an RFC 3339 instant, printed in UTC
/// (`2026-12-04 19:43 UTC`, exact to the second on hover); `/static/time.js`
/// turns it into "3 min ago" with the exact time in the viewer's zone.
fn when(value: Option<String>) -> minijinja::Value {
    time_html(value, false)
}

/// `{{ t | exact }}`: as [`when`], the exact time kept as the text.
fn exact(value: Option<String>) -> minijinja::Value {
    time_html(value, true)
}

fn time_html(value: Option<String>, exact: bool) -> minijinja::Value {
    let Some(raw) = value.filter(|v| !v.is_empty()) else {
        return minijinja::Value::from("");
    };
    let Ok(t) = chrono::DateTime::parse_from_rfc3339(&raw) else {
        return minijinja::Value::from(raw);
    };
    let t = t.with_timezone(&chrono::Utc);
    let iso = t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let full = t.format("%Y-%m-%d %H:%M:%S UTC").to_string();
    let short = if exact {
        full.clone()
    } else {
        t.format("%Y-%m-%d %H:%M UTC").to_string()
    };
    let mark = if exact { " data-exact" } else { "" };
    minijinja::Value::from_safe_string(format!(
        "<time datetime=\"{iso}\" title=\"{full}\"{mark}>{short}</time>"
    ))
}

/// HTML-escapes text outside templates.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activity_shows_the_submission_outcome_and_the_rejection_reason() {
        let activity = serde_json::json!({
            "conversions": [
                { "id": 1, "status": "delivered", "object_type": "deals", "object_id": 9,
                  "event_type": "ClosedWon", "order_id": "9_closedwon",
                  "queued_uri": "/Advertisers/IR1/APISubmissions/B1", "outcome": "rejected",
                  "error_type": "Contract Error", "error_reason": "CONTRACT_NOT_FOUND",
                  "updated_at": "2026-11-27T10:00:00Z" },
                { "id": 2, "status": "delivered", "object_type": "deals", "object_id": 10,
                  "event_type": "ClosedWon", "order_id": "10_closedwon", "outcome": null,
                  "updated_at": "2026-11-27T10:00:00Z" },
                { "id": 3, "status": "delivered", "object_type": "deals", "object_id": 11,
                  "event_type": "ClosedWon", "order_id": "11_closedwon", "outcome": "complete",
                  "updated_at": "2026-11-27T10:00:00Z" }
            ],
            "dead_letters": []
        });
        let html = environment()
            .get_template("activity.html")
            .expect("bundled")
            .render(minijinja::context! { activity => activity, csrf => "t", filter => serde_json::json!({}) })
            .expect("renders");
        assert!(
            html.contains(
                "<span class=\"badge badge-rejected\">rejected</span> <code>CONTRACT_NOT_FOUND</code> (Contract Error)"
            ),
            "{html}"
        );
        assert!(
            html.contains("<span class=\"badge badge-queued\">queued</span>"),
            "{html}"
        );
        assert!(
            html.contains("<span class=\"badge badge-complete\">complete</span>"),
            "{html}"
        );
        // Times are printed in UTC for the script to localise.
        assert!(
            html.contains("<time datetime=\"2026-11-27T10:00:00.000Z\" title=\"2026-11-27 10:00:00 UTC\">2026-11-27 10:00 UTC</time>"),
            "{html}"
        );
    }
}
