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
];

/// The environment with every template loaded; HTML auto-escaping is on.
pub fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
    for (name, source) in TEMPLATES {
        env.add_template(name, source)
            .expect("the bundled templates parse (checked by the route tests)");
    }
    env
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
            .render(minijinja::context! { activity => activity, csrf => "t" })
            .expect("renders");
        assert!(
            html.contains(
                "<strong>rejected</strong>: <code>CONTRACT_NOT_FOUND</code> (Contract Error)"
            ),
            "{html}"
        );
        assert!(html.contains("<td class=\"outcome\">queued</td>"), "{html}");
        assert!(
            html.contains("<td class=\"outcome\">complete</td>"),
            "{html}"
        );
    }
}
