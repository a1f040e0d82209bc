//! The encrypted columns of `portals`, read and swapped as sealed bytes
//! (key status, rotation and the start-up check).

use sqlx::{AssertSqlSafe, PgPool, Row};

/// The encrypted columns of `portals`.
pub const SECRET_COLUMNS: [&str; 5] = [
    "hubspot_private_token",
    "hubspot_access_token",
    "hubspot_refresh_token",
    "hubspot_webhook_secret",
    "impact_auth_token",
];

/// `column`, when it is one of [`SECRET_COLUMNS`] (the only names ever
/// put into these statements).
fn checked(column: &str) -> Result<&'static str, sqlx::Error> {
    SECRET_COLUMNS
        .into_iter()
        .find(|c| *c == column)
        .ok_or_else(|| sqlx::Error::ColumnNotFound(column.to_owned()))
}

/// Every sealed value of `column`, with its portal.
pub async fn sealed(pool: &PgPool, column: &str) -> Result<Vec<(i64, Vec<u8>)>, sqlx::Error> {
    let column = checked(column)?;
    let sql = format!("SELECT portal_id, {column} AS v FROM portals WHERE {column} IS NOT NULL");
    sqlx::query(AssertSqlSafe(sql))
        .fetch_all(pool)
        .await?
        .into_iter()
        .map(|r| Ok((r.try_get("portal_id")?, r.try_get("v")?)))
        .collect()
}

/// The sealed value of `column` of the lowest portal that has one.
pub async fn first_sealed(
    pool: &PgPool,
    column: &str,
) -> Result<Option<(i64, Vec<u8>)>, sqlx::Error> {
    let column = checked(column)?;
    let sql = format!(
        "SELECT portal_id, {column} AS v FROM portals WHERE {column} IS NOT NULL ORDER BY portal_id LIMIT 1"
    );
    let Some(r) = sqlx::query(AssertSqlSafe(sql)).fetch_optional(pool).await? else {
        return Ok(None);
    };
    Ok(Some((r.try_get("portal_id")?, r.try_get("v")?)))
}

/// Replaces `portal`'s `column` with `new` if it is still `old` (a
/// concurrent write already uses the current key); rows changed.
pub async fn swap_sealed(
    pool: &PgPool,
    column: &str,
    portal: i64,
    old: &[u8],
    new: &[u8],
) -> Result<u64, sqlx::Error> {
    let column = checked(column)?;
    let sql = format!("UPDATE portals SET {column} = $1 WHERE portal_id = $2 AND {column} = $3");
    let done = sqlx::query(AssertSqlSafe(sql))
        .bind(new)
        .bind(portal)
        .bind(old)
        .execute(pool)
        .await?;
    Ok(done.rows_affected())
}
