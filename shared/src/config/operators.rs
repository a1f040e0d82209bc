//! Operator tokens: who may use the console's admin API (and the website's
//! JSON API for every portal), each under a name the audit log records.
//!
//! Sources, all optional and combined: `CONNECTOR_ADMIN_TOKEN` (one token,
//! named `admin`), `CONNECTOR_ADMIN_TOKENS` (`name:token,name:token`) and
//! `CONNECTOR_ADMIN_TOKENS_FILE` (one `name:token` per line, `#` comments).
//! An empty or blank value is unset: no token, no operator access. A token
//! that is set must be at least [`MIN_TOKEN_BYTES`] of visible ASCII, or the
//! console refuses to start (a half-configured admin is a mistake).
//!
//! Only SHA-256 digests of the tokens are kept; a presented token is hashed
//! and compared with every digest in constant time, so neither the tokens'
//! lengths nor how much of one matched shows in the timing.

use std::path::Path;

use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
use subtle::{ConditionallySelectable, ConstantTimeEq};

use super::{ConfigError, Settings};

/// Shortest accepted operator token, in bytes (256 bits of a hex or base64 secret).
pub const MIN_TOKEN_BYTES: usize = 32;
/// The name of `CONNECTOR_ADMIN_TOKEN` in the audit log.
pub const ADMIN_TOKEN_NAME: &str = "admin";
/// Longest operator name.
const MAX_NAME: usize = 64;

/// The configured operator tokens (digests only) and their names.
#[derive(Clone, Default)]
pub struct OperatorTokens {
    entries: Vec<Entry>,
}

#[derive(Clone)]
struct Entry {
    name: String,
    digest: [u8; 32],
}

impl std::fmt::Debug for OperatorTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OperatorTokens")
            .field("names", &self.names().collect::<Vec<_>>())
            .finish()
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl OperatorTokens {
    /// No token: operator access is off.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The operators' names, in configuration order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|e| e.name.as_str())
    }

    /// The name of the operator whose token `presented` is, if any. Every
    /// digest is compared, in constant time, whatever matches.
    pub fn authenticate(&self, presented: &str) -> Option<&str> {
        let given = digest(presented.trim());
        // Index + 1 of the match; 0: none.
        let mut found = 0u32;
        for (i, e) in self.entries.iter().enumerate() {
            let index = u32::try_from(i + 1).unwrap_or(u32::MAX);
            found.conditional_assign(&index, e.digest.ct_eq(&given));
        }
        let i = usize::try_from(found).ok()?.checked_sub(1)?;
        self.entries.get(i).map(|e| e.name.as_str())
    }

    fn add(
        &mut self,
        var: &'static str,
        where_: &str,
        name: &str,
        token: &str,
    ) -> Result<(), ConfigError> {
        let invalid = |problem: String| ConfigError::Invalid { name: var, problem };
        check_name(name).map_err(|p| invalid(format!("{where_}: {p}")))?;
        // The token itself never appears in an error.
        if token.len() < MIN_TOKEN_BYTES {
            return Err(invalid(format!(
                "the token of {name:?} is shorter than {MIN_TOKEN_BYTES} bytes \
                 (generate one with `openssl rand -hex 32`; leave it empty to turn operator access off)"
            )));
        }
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(invalid(format!(
                "the token of {name:?} must be visible ASCII without spaces (e.g. `openssl rand -hex 32`)"
            )));
        }
        if self.entries.iter().any(|e| e.name == name) {
            return Err(invalid(format!(
                "the operator name {name:?} is given twice (CONNECTOR_ADMIN_TOKEN is named {ADMIN_TOKEN_NAME:?})"
            )));
        }
        let d = digest(token);
        if let Some(other) = self.entries.iter().find(|e| bool::from(e.digest.ct_eq(&d))) {
            return Err(invalid(format!(
                "{name:?} and {:?} share one token: give each operator their own",
                other.name
            )));
        }
        self.entries.push(Entry {
            name: name.to_owned(),
            digest: d,
        });
        Ok(())
    }

    /// Adds the `name:token` pairs of `entries` (`where_` says where each
    /// one is, for errors: "entry 2", "line 7").
    fn add_pairs<'a>(
        &mut self,
        var: &'static str,
        entries: impl Iterator<Item = (String, &'a str)>,
    ) -> Result<(), ConfigError> {
        for (where_, entry) in entries {
            let Some((name, token)) = entry.split_once(':') else {
                return Err(ConfigError::Invalid {
                    name: var,
                    problem: format!("{where_} is not name:token"),
                });
            };
            self.add(var, &where_, name.trim(), token.trim())?;
        }
        Ok(())
    }
}

/// A name is 1 to 64 of `[A-Za-z0-9._@-]` (never echoed when wrong: it
/// could be part of a mistyped token).
fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._@-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "the operator name must be 1 to {MAX_NAME} letters, digits, '.', '_', '@' or '-'"
        ))
    }
}

impl Settings {
    /// The operator tokens of `CONNECTOR_ADMIN_TOKEN`, `CONNECTOR_ADMIN_TOKENS`
    /// and `CONNECTOR_ADMIN_TOKENS_FILE`; empty when none is set (operator
    /// access off). `Err` names the variable: a token too short or not
    /// visible ASCII, a malformed entry, a name or a token given twice, an
    /// unreadable file.
    pub fn operator_tokens(&self) -> Result<OperatorTokens, ConfigError> {
        let mut tokens = OperatorTokens::default();
        if let Some(t) = &self.admin_token {
            let t = t.expose_secret().trim();
            if !t.is_empty() {
                tokens.add("CONNECTOR_ADMIN_TOKEN", "the token", ADMIN_TOKEN_NAME, t)?;
            }
        }
        if let Some(list) = &self.admin_tokens {
            let entries = list
                .expose_secret()
                .split(',')
                .enumerate()
                .map(|(i, e)| (format!("entry {}", i + 1), e.trim()))
                .filter(|(_, e)| !e.is_empty());
            tokens.add_pairs("CONNECTOR_ADMIN_TOKENS", entries)?;
        }
        if let Some(path) = self.admin_tokens_file.as_deref().map(str::trim)
            && !path.is_empty()
        {
            let text = read_tokens_file(Path::new(path))?;
            let entries = text
                .lines()
                .enumerate()
                .map(|(i, l)| (format!("line {}", i + 1), l.trim()))
                .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'));
            tokens.add_pairs("CONNECTOR_ADMIN_TOKENS_FILE", entries)?;
        }
        Ok(tokens)
    }
}

fn read_tokens_file(path: &Path) -> Result<String, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Invalid {
        name: "CONNECTOR_ADMIN_TOKENS_FILE",
        problem: format!("cannot read {}: {e}", path.display()),
    })?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o007 != 0
        {
            tracing::warn!(
                path = %path.display(),
                "CONNECTOR_ADMIN_TOKENS_FILE is readable by every user of this machine; make it readable by the console's user only (chmod 600)"
            );
        }
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    fn settings(token: Option<&str>, tokens: Option<&str>) -> Settings {
        let mut s = Settings::defaults();
        s.admin_token = token.map(SecretString::from);
        s.admin_tokens = tokens.map(SecretString::from);
        s
    }

    #[test]
    fn empty_or_blank_tokens_are_unset() {
        for t in [None, Some(""), Some("   "), Some("\n")] {
            let s = settings(t, t);
            let tokens = s.operator_tokens().expect("valid");
            assert!(tokens.is_empty(), "{t:?}");
            // Nothing opens to an empty or blank bearer.
            assert_eq!(tokens.authenticate(""), None);
            assert_eq!(tokens.authenticate(" "), None);
        }
        assert!(
            settings(None, Some(" , ,"))
                .operator_tokens()
                .expect("valid")
                .is_empty()
        );
    }

    #[test]
    fn a_short_token_is_refused_naming_the_variable_never_the_token() {
        let short = "s".repeat(MIN_TOKEN_BYTES - 1);
        let err = settings(Some(&short), None)
            .operator_tokens()
            .expect_err("31 bytes");
        let text = err.to_string();
        assert!(text.contains("CONNECTOR_ADMIN_TOKEN:"), "{text}");
        assert!(text.contains("shorter than 32 bytes"), "{text}");
        assert!(!text.contains(&short), "{text}");
        assert!(
            settings(Some(&"s".repeat(MIN_TOKEN_BYTES)), None)
                .operator_tokens()
                .is_ok()
        );
        let err = settings(None, Some(&format!("alice:{A},bob:{short}")))
            .operator_tokens()
            .expect_err("bob's is short");
        assert!(err.to_string().contains("CONNECTOR_ADMIN_TOKENS:"), "{err}");
        assert!(err.to_string().contains("\"bob\""), "{err}");
        let spaced = format!("{} {}", &A[..20], &A[..20]);
        assert!(settings(Some(&spaced), None).operator_tokens().is_err());
    }

    #[test]
    fn named_tokens_authenticate_as_their_name() {
        let s = settings(Some(A), Some(&format!(" alice : {B} ,")));
        let tokens = s.operator_tokens().expect("valid");
        assert_eq!(tokens.names().collect::<Vec<_>>(), ["admin", "alice"]);
        assert_eq!(tokens.authenticate(A), Some("admin"));
        assert_eq!(tokens.authenticate(B), Some("alice"));
        assert_eq!(tokens.authenticate(&B[1..]), None);
        assert_eq!(tokens.authenticate(&format!("{B}b")), None);
        assert_eq!(tokens.authenticate(""), None);
        assert!(!format!("{tokens:?}").contains(A), "digests only");
    }

    #[test]
    fn malformed_or_ambiguous_lists_are_refused() {
        for (list, says) in [
            ("alice".to_owned(), "entry 1 is not name:token"),
            (format!("alice:{A},alice:{B}"), "given twice"),
            (format!("admin:{B}"), "given twice"),
            (format!("alice:{A},bob:{A}"), "share one token"),
            (format!("al ice:{A}"), "entry 1: the operator name must be"),
            (
                format!("bob:{B},:{A}"),
                "entry 2: the operator name must be",
            ),
        ] {
            let err = settings(Some(&"c".repeat(40)), Some(&list))
                .operator_tokens()
                .expect_err(&list);
            assert!(err.to_string().contains(says), "{list}: {err}");
            assert!(!err.to_string().contains(B), "{err}");
        }
    }

    #[test]
    fn the_tokens_file_has_one_pair_a_line_and_comments() {
        let dir = std::env::temp_dir().join(format!("op-tokens-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("tokens");
        std::fs::write(&path, format!("# operators\n\ncarol:{A}\n  dave:{B}  \n"))
            .expect("written");
        let mut s = settings(None, None);
        s.admin_tokens_file = Some(path.display().to_string());
        let tokens = s.operator_tokens().expect("valid");
        assert_eq!(tokens.authenticate(B), Some("dave"));
        std::fs::write(&path, "carol:short\n").expect("written");
        let err = s.operator_tokens().expect_err("short");
        assert!(
            err.to_string().starts_with(
                "configuration: CONNECTOR_ADMIN_TOKENS_FILE: the token of \"carol\" is shorter"
            ),
            "{err}"
        );
        std::fs::write(&path, "no pair here\n").expect("written");
        let err = s.operator_tokens().expect_err("malformed");
        assert!(
            err.to_string().contains("line 1 is not name:token"),
            "{err}"
        );
        s.admin_tokens_file = Some(dir.join("missing").display().to_string());
        let err = s.operator_tokens().expect_err("missing");
        assert!(err.to_string().contains("cannot read"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
