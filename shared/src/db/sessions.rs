//! The `website_sessions` table: the console's sessions, kept so that they
//! can be ended (logout, uninstall, account deletion). Rows are named by
//! the SHA-256 of the session id the cookie carries.

use sqlx::{PgPool, Row};

/// The HubSpot user a session was opened for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionUser {
    /// HubSpot's user id.
    pub user_id: Option<i64>,
    /// The user's email address.
    pub user: Option<String>,
}

/// Stores a new session of `portal` for `ttl_secs`, and forgets the
/// expired ones.
pub async fn open(
    pool: &PgPool,
    key: &[u8],
    portal: i64,
    who: &SessionUser,
    ttl_secs: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM website_sessions WHERE expires_at < now()")
        .execute(pool)
        .await?;
    sqlx::query(
        "INSERT INTO website_sessions (key, portal_id, hubspot_user_id, hubspot_user, expires_at)
         VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5))",
    )
    .bind(key)
    .bind(portal)
    .bind(who.user_id)
    .bind(who.user.as_deref())
    .bind(ttl_secs as f64)
    .execute(pool)
    .await?;
    Ok(())
}

/// The user of the live session `key` of `portal` (`None`: ended, expired
/// or never opened).
pub async fn find(
    pool: &PgPool,
    key: &[u8],
    portal: i64,
) -> Result<Option<SessionUser>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT hubspot_user_id, hubspot_user FROM website_sessions
         WHERE key = $1 AND portal_id = $2 AND expires_at > now()",
    )
    .bind(key)
    .bind(portal)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|r| SessionUser {
        user_id: r.get("hubspot_user_id"),
        user: r.get("hubspot_user"),
    }))
}

/// Ends session `key`; true when it existed.
pub async fn end(pool: &PgPool, key: &[u8]) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query("DELETE FROM website_sessions WHERE key = $1")
        .bind(key)
        .execute(pool)
        .await?
        .rows_affected()
        > 0)
}

/// How many live sessions `portal` has.
pub async fn count(pool: &PgPool, portal: i64) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT count(*) FROM website_sessions WHERE portal_id = $1 AND expires_at > now()",
    )
    .bind(portal)
    .fetch_one(pool)
    .await
}
