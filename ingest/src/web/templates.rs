//! The page templates (`ingest/templates/*.html`), compiled into the binary.

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
