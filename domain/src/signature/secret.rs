//! Which strings may key webhook signatures: an app's client secret, the
//! default one (`CONNECTOR_HUBSPOT_CLIENT_SECRET`) or a private app's.
//! HubSpot's client secrets are 36-character UUIDs; an empty or short
//! string is refused wherever a secret enters (settings, the secrets
//! file, the API, portal documents), since anyone could sign with it.

/// The fewest characters a signing secret may have.
pub const MIN_SECRET_LEN: usize = 16;

/// Why a string cannot be a signing secret. The messages never hold the
/// value (nor its length).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WeakSecret {
    /// Empty, or only whitespace.
    #[error("is empty: anyone could sign webhooks with it")]
    Empty,
    /// Fewer than [`MIN_SECRET_LEN`] characters.
    #[error(
        "is shorter than {MIN_SECRET_LEN} characters (HubSpot's client secrets have 36): \
         too easy to guess"
    )]
    Short,
}

/// The secret without surrounding whitespace, when it is long enough.
pub fn check_secret(secret: &str) -> Result<&str, WeakSecret> {
    let s = secret.trim();
    match s.chars().count() {
        0 => Err(WeakSecret::Empty),
        n if n < MIN_SECRET_LEN => Err(WeakSecret::Short),
        _ => Ok(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_short_secrets_are_refused() {
        assert_eq!(check_secret(""), Err(WeakSecret::Empty));
        assert_eq!(check_secret(" \t\n"), Err(WeakSecret::Empty));
        assert_eq!(check_secret("secret"), Err(WeakSecret::Short));
        assert_eq!(check_secret(" 0123456789abcde "), Err(WeakSecret::Short));
        assert_eq!(
            check_secret(" 0123456789abcdef\n"),
            Ok("0123456789abcdef"),
            "trimmed"
        );
        let uuid = "3b1c0f2e-8d4a-4c7e-9f1a-2b6d5e8c7a90";
        assert_eq!(check_secret(uuid), Ok(uuid));
        assert!(!WeakSecret::Short.to_string().contains("secret\""));
    }
}
