//! Why an operation did not happen, and what of it a visitor may see.

use axum::http::StatusCode;
use domain::events::PortalId;
use shared::{db::portals::PortalStoreError, http::logged};

/// Why an operation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum OpError {
    /// No such portal (or deleted).
    #[error("portal not found")]
    NotFound,
    /// The caller may not see this portal.
    #[error("this session may not access portal {0}")]
    Forbidden(PortalId),
    /// The input does not validate; one message per problem.
    #[error("{}", .0.join("; "))]
    Invalid(Vec<String>),
    /// A step is missing first (e.g. Settings before triggers).
    #[error("{0}")]
    Conflict(String),
    /// The database failed (the detail is in the log under this reference).
    #[error("the database is unavailable right now; try again in a moment (reference {0})")]
    Database(String),
    /// Something on the connector's side is broken, e.g. a stored secret
    /// that does not decrypt (the detail is in the log under this reference).
    #[error(
        "something went wrong on the connector's side; an operator can look it up (reference {0})"
    )]
    Internal(String),
    /// The edit started from a version of the configuration that is no
    /// longer current: someone else (or another tab) changed it since.
    #[error(
        "this configuration was changed by someone else (or in another tab) since you opened it (version {expected}, now {current}): reload the page and make your change again"
    )]
    Stale {
        /// The version the edit started from.
        expected: i64,
        /// The current version.
        current: i64,
    },
    /// HubSpot or impact.com failed.
    #[error("{0}")]
    Upstream(String),
    /// A record of the portal (e.g. a dead letter) does not exist.
    #[error("{0}")]
    Missing(String),
    /// A service the operation needs (the broker) is unavailable.
    #[error("{0}")]
    Unavailable(String),
}

impl OpError {
    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Database(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Stale { .. } => StatusCode::CONFLICT,
            Self::Upstream(_) => StatusCode::BAD_GATEWAY,
            Self::Missing(_) => StatusCode::NOT_FOUND,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The machine-readable code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::Forbidden(_) => "forbidden",
            Self::Invalid(_) => "invalid",
            Self::Conflict(_) => "conflict",
            Self::Database(_) => "database_unavailable",
            Self::Internal(_) => "internal_error",
            Self::Stale { .. } => "stale_version",
            Self::Upstream(_) => "upstream_error",
            Self::Missing(_) => "not_found",
            Self::Unavailable(_) => "unavailable",
        }
    }
}

impl OpError {
    /// The correlation id under which the detail was logged, if any.
    pub fn reference(&self) -> Option<&str> {
        match self {
            Self::Database(r) | Self::Internal(r) => Some(r),
            _ => None,
        }
    }

    /// A failure whose detail only the log may see.
    pub fn internal(what: &str, detail: impl std::fmt::Display) -> Self {
        Self::Internal(logged(what, detail))
    }

    /// A HubSpot failure: what HubSpot said is shown (a refusal, a rate
    /// limit); a transport failure (which names hosts and addresses) only
    /// goes to the log.
    pub fn hubspot(e: &shared::hubspot::HubSpotError) -> Self {
        match e {
            shared::hubspot::HubSpotError::Unavailable(_) => Self::Upstream(format!(
                "HubSpot could not be reached; try again in a moment (reference {})",
                logged("hubspot", e)
            )),
            other => Self::Upstream(other.to_string()),
        }
    }
}

impl From<sqlx::Error> for OpError {
    fn from(e: sqlx::Error) -> Self {
        Self::Database(logged("database", e))
    }
}

impl From<PortalStoreError> for OpError {
    fn from(e: PortalStoreError) -> Self {
        match e {
            PortalStoreError::Db(e) => e.into(),
            PortalStoreError::Refused(m) => Self::Invalid(vec![m]),
            PortalStoreError::Stale { expected, current } => Self::Stale { expected, current },
            other => Self::internal("stored portal", other),
        }
    }
}
