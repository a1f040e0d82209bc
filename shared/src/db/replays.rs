//! `replay_requests`: replays the console asked for and workers carry out.
//! A request is `queued` when inserted, `running` once a worker took it,
//! then `done` (every dead letter has a result) or `failed` (it could not
//! be carried out; `error` says why).

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::{FromRow, PgExecutor, PgPool, types::Json};
use uuid::Uuid;

use crate::broker::ReplayMode;

/// One replay request as stored.
#[derive(Debug, Clone, PartialEq, Serialize, FromRow)]
pub struct ReplayRequestRow {
    /// The request's id (what the console answers with).
    pub id: Uuid,
    /// When it was asked for.
    pub created_at: DateTime<Utc>,
    /// Who asked (the audit log's actor).
    pub actor: String,
    /// The portal it is limited to; `None`: an operator's, any portal.
    pub portal_id: Option<i64>,
    /// The dead letters to replay, in order.
    pub dead_letter_ids: Vec<i64>,
    /// How to replay them.
    #[sqlx(json)]
    pub mode: ReplayMode,
    /// `queued`, `running`, `done` or `failed`.
    pub status: String,
    /// One report per dead letter replayed so far.
    pub results: Value,
    /// Why a `failed` request failed.
    pub error: Option<String>,
    /// When a worker started it.
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended.
    pub finished_at: Option<DateTime<Utc>>,
}

impl ReplayRequestRow {
    /// True once it is `done` or `failed`.
    pub fn finished(&self) -> bool {
        matches!(self.status.as_str(), "done" | "failed")
    }
}

const COLUMNS: &str = "id, created_at, actor, portal_id, dead_letter_ids, mode, status, results, \
                       error, started_at, finished_at";

/// Records a `queued` request and returns its id.
pub async fn insert(
    pool: &PgPool,
    actor: &str,
    portal: Option<i64>,
    dead_letters: &[i64],
    mode: ReplayMode,
) -> Result<Uuid, sqlx::Error> {
    let id = Uuid::new_v4();
    insert_as(pool, id, actor, portal, dead_letters, mode).await?;
    Ok(id)
}

/// The lease holder name of request `id`: the console reserves a dead
/// letter under it and the worker carrying the request out takes it over.
pub fn lease_holder(id: Uuid) -> String {
    format!("replay:{id}")
}

/// Records a `queued` request under id `id` (chosen by the caller, e.g. to
/// reserve its dead letter in the same transaction).
pub async fn insert_as<'e>(
    db: impl PgExecutor<'e>,
    id: Uuid,
    actor: &str,
    portal: Option<i64>,
    dead_letters: &[i64],
    mode: ReplayMode,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO replay_requests (id, actor, portal_id, dead_letter_ids, mode)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(id)
    .bind(actor)
    .bind(portal)
    .bind(dead_letters)
    .bind(Json(mode))
    .execute(db)
    .await?;
    Ok(())
}

/// The request `id`.
pub async fn get(pool: &PgPool, id: Uuid) -> Result<Option<ReplayRequestRow>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM replay_requests WHERE id = $1");
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(pool)
        .await
}

/// The most recent requests, of `portal` only when given.
pub async fn list(
    pool: &PgPool,
    portal: Option<i64>,
    limit: i64,
) -> Result<Vec<ReplayRequestRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM replay_requests WHERE $1::bigint IS NULL OR portal_id = $1
         ORDER BY created_at DESC, id LIMIT $2"
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(portal)
        .bind(limit.clamp(1, 1000))
        .fetch_all(pool)
        .await
}

/// Takes request `id` to carry it out: `running`, results cleared. `None`
/// when it does not exist or is finished already (never run twice).
pub async fn start(pool: &PgPool, id: Uuid) -> Result<Option<ReplayRequestRow>, sqlx::Error> {
    let sql = format!(
        "UPDATE replay_requests SET status = 'running', started_at = now(), results = '[]'
         WHERE id = $1 AND status IN ('queued', 'running') RETURNING {COLUMNS}"
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(pool)
        .await
}

/// Appends one dead letter's report to a running request (its progress).
pub async fn push_result(pool: &PgPool, id: Uuid, result: &Value) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE replay_requests SET results = results || jsonb_build_array($2::jsonb)
         WHERE id = $1 AND status = 'running'",
    )
    .bind(id)
    .bind(result)
    .execute(pool)
    .await?;
    Ok(())
}

/// Ends a request: `done`, or `failed` with `error`.
pub async fn finish(pool: &PgPool, id: Uuid, error: Option<&str>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE replay_requests
         SET status = CASE WHEN $2::text IS NULL THEN 'done' ELSE 'failed' END,
             error = $2, finished_at = now()
         WHERE id = $1 AND status IN ('queued', 'running')",
    )
    .bind(id)
    .bind(error)
    .execute(pool)
    .await?;
    Ok(())
}
