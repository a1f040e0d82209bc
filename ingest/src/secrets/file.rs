//! `CONNECTOR_WEBHOOK_SECRETS_FILE`: per-portal webhook secrets in a file,
//! read at start (a bad file stops ingest there) and read again whenever it
//! changes (a bad version is refused and the previous one kept).
//!
//! Format: one `PORTAL_ID=SECRET` per line (the private app's client
//! secret); blank lines and lines starting with `#` are ignored;
//! whitespace around the id and the secret is dropped. An empty or short
//! secret (under 16 characters) is refused like any other bad line.

use std::{
    collections::HashMap,
    hash::{DefaultHasher, Hash, Hasher},
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use secrecy::SecretString;
use tokio_util::sync::CancellationToken;

use super::{PortalKey, Source, WebhookSecrets, refresh_failed};

/// How often the file is looked at.
pub const POLL: Duration = Duration::from_secs(2);

/// Parses the file's text. Errors name the line, never its secret.
pub fn parse(text: &str) -> Result<HashMap<u64, SecretString>, String> {
    let mut out = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((id, secret)) = line.split_once('=') else {
            return Err(format!("line {n}: expected PORTAL_ID=SECRET"));
        };
        let id: u64 = id
            .trim()
            .parse()
            .ok()
            .filter(|id| *id > 0)
            .ok_or_else(|| format!("line {n}: the portal id must be a positive number"))?;
        let secret = domain::signature::check_secret(secret)
            .map_err(|e| format!("line {n}: the secret of portal {id} {e}"))?;
        if out
            .insert(id, SecretString::from(secret.to_owned()))
            .is_some()
        {
            return Err(format!("line {n}: portal {id} is listed twice"));
        }
    }
    Ok(out)
}

/// Reads and parses the file: the keys and a fingerprint of the text.
pub fn load(path: &Path) -> Result<(HashMap<u64, PortalKey>, u64), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let keys = parse(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let keys = keys
        .into_iter()
        .map(|(id, s)| (id, PortalKey::Secret(s)))
        .collect();
    Ok((keys, fingerprint(&text)))
}

fn fingerprint(text: &str) -> u64 {
    let mut h = DefaultHasher::new();
    text.hash(&mut h);
    h.finish()
}

/// Loads the file into `secrets` (at start: an error stops ingest).
pub fn load_into(path: &Path, secrets: &WebhookSecrets) -> Result<u64, String> {
    let (keys, print) = load(path)?;
    tracing::info!(portals = keys.len(), file = %path.display(), "webhook secrets file loaded");
    secrets.replace(Source::File, keys);
    Ok(print)
}

/// Reads the file again whenever its text changes, until `shutdown`.
pub fn spawn_watch(
    path: PathBuf,
    secrets: Arc<WebhookSecrets>,
    mut last: u64,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        // One complaint per bad version of the file, not one per look.
        let mut reported: Option<String> = None;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(POLL) => {}
            }
            let p = path.clone();
            let loaded = tokio::task::spawn_blocking(move || load(&p))
                .await
                .unwrap_or_else(|e| Err(e.to_string()));
            match loaded {
                Ok((_, print)) if print == last => {}
                Ok((keys, print)) => {
                    tracing::info!(portals = keys.len(), file = %path.display(), "webhook secrets file changed; reloaded");
                    secrets.replace(Source::File, keys);
                    last = print;
                    reported = None;
                }
                Err(e) => {
                    refresh_failed(Source::File);
                    if reported.as_ref() != Some(&e) {
                        tracing::error!(error = %e, "webhook secrets file unreadable; keeping the secrets read before");
                        reported = Some(e);
                    }
                }
            }
        }
    })
}
