//! The accessibility and layout walk of the browser tests: each page at
//! 1280 and 390 CSS pixels wide must not overflow horizontally
//! (`scrollWidth <= innerWidth`) and axe-core (injected through WebDriver)
//! must find no serious or critical violation; a screenshot of each is
//! saved. axe-core comes from the npm registry:
//! `npm install --prefix target/axe-core axe-core@4.14.1` (what `.ci/run`
//! does), or `AXE_CORE_JS` names an `axe.min.js`.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::Value;

use super::webdriver::Browser;

/// The widths every page is checked at: a laptop, a phone.
pub const WIDTHS: [u32; 2] = [1280, 390];

/// The build directory (`CARGO_TARGET_DIR` or the workspace's `target/`).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

/// `axe.min.js`, if installed.
pub fn find_axe() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("AXE_CORE_JS").map(PathBuf::from) {
        return p.is_file().then_some(p);
    }
    let p = target_dir().join("axe-core/node_modules/axe-core/axe.min.js");
    p.is_file().then_some(p)
}

/// axe-core's source, read once.
pub struct Axe {
    source: String,
}

impl Axe {
    /// Reads `axe.min.js`.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        Ok(Self {
            source: std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?,
        })
    }

    /// Checks the page at `url` at every width: no horizontal overflow,
    /// no serious or critical axe violation; screenshots saved as
    /// `<dir>/<name>-<width>.png`. Returns the problems found (empty: none).
    pub async fn check(
        &self,
        b: &Browser,
        url: &str,
        name: &str,
        dir: &Path,
    ) -> anyhow::Result<Vec<String>> {
        let mut problems = vec![];
        for width in WIDTHS {
            b.resize(width, 900).await?;
            b.goto(url).await?;
            let at = b.url().await?;
            if !at.starts_with(url) {
                problems.push(format!("{name}: {url} went to {at}"));
            }
            let size = b
                .execute(
                    "return [document.documentElement.scrollWidth, window.innerWidth];",
                    vec![],
                )
                .await?;
            let (scroll, inner) = (size[0].as_u64().unwrap_or(0), size[1].as_u64().unwrap_or(0));
            if scroll > inner {
                // The outermost elements sticking out, to say what to fix.
                let wide = b
                    .execute(
                        "return [...document.querySelectorAll('body *')]
                           .filter(e => e.getBoundingClientRect().right > window.innerWidth
                                        && !(e.parentElement && e.parentElement.getBoundingClientRect().right > window.innerWidth))
                           .slice(0, 5)
                           .map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + (e.className ? '.' + e.className : ''));",
                        vec![],
                    )
                    .await?;
                problems.push(format!(
                    "{name} at {width} px: overflows horizontally (scrollWidth {scroll} > innerWidth {inner}): {wide}"
                ));
            }
            b.execute(&self.source, vec![]).await?;
            let found = b
                .execute_async(
                    "const done = arguments[arguments.length - 1];
                     axe.run(document, { resultTypes: ['violations'] })
                       .then(r => done(r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
                         .map(v => ({ id: v.id, impact: v.impact, help: v.help,
                                      nodes: v.nodes.slice(0, 5).map(n => n.target.join(' ')) }))))
                       .catch(e => done({ error: String(e) }));",
                    vec![],
                )
                .await?;
            match found {
                Value::Array(v) => problems.extend(v.iter().map(|v| {
                    format!(
                        "{name} at {width} px: axe {} ({}): {} — {}",
                        v["id"].as_str().unwrap_or_default(),
                        v["impact"].as_str().unwrap_or_default(),
                        v["help"].as_str().unwrap_or_default(),
                        v["nodes"]
                    )
                })),
                other => problems.push(format!("{name}: axe failed: {other}")),
            }
            b.screenshot(&dir.join(format!("{name}-{width}.png")))
                .await?;
        }
        b.resize(WIDTHS[0], 1024).await?;
        Ok(problems)
    }

    /// Checks every `(name, path)` under `base`; fails listing all problems.
    pub async fn walk(
        &self,
        b: &Browser,
        base: &str,
        pages: &[(&str, &str)],
        dir: &Path,
    ) -> anyhow::Result<()> {
        let mut problems = vec![];
        for (name, path) in pages {
            problems.extend(self.check(b, &format!("{base}{path}"), name, dir).await?);
        }
        anyhow::ensure!(problems.is_empty(), "{}", problems.join("\n"));
        Ok(())
    }
}
