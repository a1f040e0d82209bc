//! Reading adjustments back: one by id, and the listings of the CLI and
//! the website's Activity.

use sqlx::PgPool;

use super::{AdjustmentRow, COLUMNS, from_row};

/// One adjustment by id.
pub async fn get(pool: &PgPool, id: i64) -> Result<Option<AdjustmentRow>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM adjustments WHERE id = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(pool)
        .await?;
    Ok(row.as_ref().map(from_row))
}

/// Newest first, optionally of one portal and status, at most `limit`.
pub async fn list(
    pool: &PgPool,
    portal: Option<i64>,
    status: Option<&str>,
    limit: i64,
) -> Result<Vec<AdjustmentRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM adjustments WHERE ($1::bigint IS NULL OR portal_id = $1)
             AND ($2::text IS NULL OR status = $2) ORDER BY id DESC LIMIT $3"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(portal)
        .bind(status)
        .bind(limit)
        .fetch_all(pool)
        .await?;
    Ok(rows.iter().map(from_row).collect())
}
