//! OAuth: authorization codes, access and refresh tokens, introspection and
//! uninstalls. The HTTP side lives in `oauth_routes`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use base64::Engine as _;
use rand::RngCore;

/// All scopes the connector asks for; granted when a caller asks for none.
pub const DEFAULT_SCOPES: [&str; 8] = [
    "crm.objects.contacts.read",
    "crm.objects.companies.read",
    "crm.objects.deals.read",
    "crm.objects.line_items.read",
    "crm.schemas.contacts.read",
    "crm.schemas.companies.read",
    "crm.schemas.deals.read",
    "oauth",
];

const CODE_TTL: Duration = Duration::from_secs(600);

/// The HubSpot user who approves the app: introspection names them
/// (`user_id`, `user`), as HubSpot's does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubUser {
    /// HubSpot's user id.
    pub id: u64,
    /// The user's email address.
    pub email: String,
}

impl Default for HubUser {
    fn default() -> Self {
        Self {
            id: 1234567,
            email: "sandbox@example.com".into(),
        }
    }
}

#[derive(Debug, Clone)]
struct CodeGrant {
    portal: u64,
    user: HubUser,
    redirect_uri: String,
    scopes: Vec<String>,
    expires: Instant,
}

#[derive(Debug, Clone)]
struct RefreshGrant {
    portal: u64,
    user: HubUser,
    scopes: Vec<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct AccessGrant {
    pub(crate) portal: u64,
    pub(crate) user: HubUser,
    pub(crate) scopes: Vec<String>,
    pub(crate) expires: Instant,
}

/// A token pair as the token endpoint returns it.
#[derive(Debug, Clone)]
pub(crate) struct Issued {
    pub(crate) access_token: String,
    pub(crate) refresh_token: String,
    pub(crate) expires_in: u64,
    pub(crate) portal: u64,
    pub(crate) scopes: Vec<String>,
}

/// Why a grant was refused: HubSpot's `status` and OAuth's `error`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GrantError {
    pub(crate) status: &'static str,
    pub(crate) error: &'static str,
    pub(crate) message: String,
}

impl GrantError {
    fn new(status: &'static str, error: &'static str, message: impl Into<String>) -> Self {
        GrantError {
            status,
            error,
            message: message.into(),
        }
    }
}

/// What a bearer token resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TokenCheck {
    Valid {
        portal: u64,
        scopes: Option<Vec<String>>,
    },
    Expired {
        minutes_ago: i64,
    },
    Unknown,
}

/// Introspection result.
#[derive(Debug, Clone)]
pub(crate) struct Introspection {
    pub(crate) portal: u64,
    pub(crate) user: HubUser,
    pub(crate) scopes: Vec<String>,
    pub(crate) expires_in: Option<u64>,
    pub(crate) token_type: &'static str,
}

fn random_token(prefix: &str, bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
    )
}

/// Faults and counters of the token endpoint.
#[derive(Debug, Default)]
pub(crate) struct TokenFaults {
    /// Delay before answering.
    pub(crate) latency: Duration,
    /// Refreshes issue a new refresh token and retire the old one.
    pub(crate) rotate: bool,
    /// Refreshes granted.
    pub(crate) refreshes: u64,
}

/// Token bookkeeping for the one public app the sandbox knows.
#[derive(Debug, Default)]
pub(crate) struct OAuthState {
    codes: HashMap<String, CodeGrant>,
    refresh: HashMap<String, RefreshGrant>,
    access: HashMap<String, AccessGrant>,
}

impl OAuthState {
    /// A one-time code for `portal`, valid ten minutes.
    pub(crate) fn authorize(
        &mut self,
        portal: u64,
        user: HubUser,
        redirect_uri: &str,
        scopes: Vec<String>,
    ) -> String {
        let code = uuid::Uuid::new_v4().to_string();
        let scopes = if scopes.is_empty() {
            DEFAULT_SCOPES.iter().map(|s| s.to_string()).collect()
        } else {
            scopes
        };
        self.codes.insert(
            code.clone(),
            CodeGrant {
                portal,
                user,
                redirect_uri: redirect_uri.to_string(),
                scopes,
                expires: Instant::now() + CODE_TTL,
            },
        );
        code
    }

    /// `grant_type=authorization_code`.
    pub(crate) fn exchange_code(
        &mut self,
        code: &str,
        redirect_uri: &str,
        ttl: Duration,
    ) -> Result<Issued, GrantError> {
        let grant = self
            .codes
            .remove(code)
            .filter(|g| g.expires > Instant::now())
            .ok_or_else(|| {
                GrantError::new(
                    "BAD_AUTH_CODE",
                    "invalid_grant",
                    "missing or unknown auth code",
                )
            })?;
        if grant.redirect_uri != redirect_uri {
            return Err(GrantError::new(
                "BAD_REDIRECT_URI",
                "invalid_grant",
                "redirect_uri does not match the one used to authorize",
            ));
        }
        let refresh_token = format!("na1-{}", uuid::Uuid::new_v4());
        self.refresh.insert(
            refresh_token.clone(),
            RefreshGrant {
                portal: grant.portal,
                user: grant.user.clone(),
                scopes: grant.scopes.clone(),
            },
        );
        Ok(self.issue_access(grant.portal, grant.user, grant.scopes, refresh_token, ttl))
    }

    /// `grant_type=refresh_token`: a new access token, and the same refresh
    /// token, or with `rotate` a new one (the old one then stops working).
    pub(crate) fn refresh(
        &mut self,
        refresh_token: &str,
        ttl: Duration,
        rotate: bool,
    ) -> Result<Issued, GrantError> {
        let grant = self.refresh.get(refresh_token).cloned().ok_or_else(|| {
            GrantError::new(
                "BAD_REFRESH_TOKEN",
                "invalid_grant",
                "missing or unknown refresh token",
            )
        })?;
        let refresh_token = if rotate {
            self.refresh.remove(refresh_token);
            let new = format!("na1-{}", uuid::Uuid::new_v4());
            self.refresh.insert(new.clone(), grant.clone());
            new
        } else {
            refresh_token.to_string()
        };
        Ok(self.issue_access(grant.portal, grant.user, grant.scopes, refresh_token, ttl))
    }

    fn issue_access(
        &mut self,
        portal: u64,
        user: HubUser,
        scopes: Vec<String>,
        refresh_token: String,
        ttl: Duration,
    ) -> Issued {
        let access_token = random_token("CN", 48);
        self.access.insert(
            access_token.clone(),
            AccessGrant {
                portal,
                user,
                scopes: scopes.clone(),
                expires: Instant::now() + ttl,
            },
        );
        Issued {
            access_token,
            refresh_token,
            expires_in: ttl.as_secs(),
            portal,
            scopes,
        }
    }

    /// Resolves an OAuth access token.
    pub(crate) fn check_access(&self, token: &str) -> TokenCheck {
        match self.access.get(token) {
            Some(g) if g.expires > Instant::now() => TokenCheck::Valid {
                portal: g.portal,
                scopes: Some(g.scopes.clone()),
            },
            Some(g) => TokenCheck::Expired {
                minutes_ago: (Instant::now() - g.expires).as_secs() as i64 / 60,
            },
            None => TokenCheck::Unknown,
        }
    }

    /// What introspection says of an access or refresh token.
    pub(crate) fn introspect(&self, token: &str) -> Option<Introspection> {
        if let Some(g) = self
            .access
            .get(token)
            .filter(|g| g.expires > Instant::now())
        {
            return Some(Introspection {
                portal: g.portal,
                user: g.user.clone(),
                scopes: g.scopes.clone(),
                expires_in: Some((g.expires - Instant::now()).as_secs()),
                token_type: "access_token",
            });
        }
        self.refresh.get(token).map(|g| Introspection {
            portal: g.portal,
            user: g.user.clone(),
            scopes: g.scopes.clone(),
            expires_in: None,
            token_type: "refresh_token",
        })
    }

    /// Forgets one refresh token (and the access tokens it issued stay until expiry).
    pub(crate) fn revoke_refresh(&mut self, token: &str) -> bool {
        self.refresh.remove(token).is_some()
    }

    /// Makes every access token of `portal` expired now (to test refreshes).
    pub(crate) fn expire_access(&mut self, portal: u64) {
        let past = Instant::now()
            .checked_sub(Duration::from_secs(1))
            .unwrap_or_else(Instant::now);
        for g in self.access.values_mut().filter(|g| g.portal == portal) {
            g.expires = past;
        }
    }

    /// Uninstall: every token of `portal` stops working.
    pub(crate) fn uninstall(&mut self, portal: u64) {
        self.codes.retain(|_, g| g.portal != portal);
        self.refresh.retain(|_, g| g.portal != portal);
        self.access.retain(|_, g| g.portal != portal);
    }
}
