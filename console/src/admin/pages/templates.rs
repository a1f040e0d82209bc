//! The operators' page templates (`console/templates/ops/*.html`).

use minijinja::Environment;

const TEMPLATES: &[(&str, &str)] = &[
    (
        "ops/base.html",
        include_str!("../../../templates/ops/base.html"),
    ),
    (
        "ops/login.html",
        include_str!("../../../templates/ops/login.html"),
    ),
    (
        "ops/portals.html",
        include_str!("../../../templates/ops/portals.html"),
    ),
    (
        "ops/dead_letters.html",
        include_str!("../../../templates/ops/dead_letters.html"),
    ),
    (
        "ops/replay.html",
        include_str!("../../../templates/ops/replay.html"),
    ),
    (
        "ops/audit.html",
        include_str!("../../../templates/ops/audit.html"),
    ),
];

/// The environment with every operators' template; HTML auto-escaping on.
pub fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
    for (name, source) in TEMPLATES {
        env.add_template(name, source)
            .expect("the bundled templates parse (checked by the tests)");
    }
    env
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_template_parses() {
        let env = super::environment();
        for (name, _) in super::TEMPLATES {
            assert!(env.get_template(name).is_ok(), "{name}");
        }
    }
}
