//! Leases on dead letters taken by a replay. Every transition is one
//! compare-and-set `UPDATE`, so two operators (or workers) never both win:
//!
//! - [`claim`]: `open` → `replaying` under a holder and an expiry; also a
//!   `replaying` one whose lease expired (its worker died), or the holder's
//!   own (a replay request reserved by the console, then carried out by a
//!   worker under the same holder, renews it);
//! - [`renew`]: the holder pushes its expiry on while it works;
//! - [`finish`]: the holder ends it (`replayed`, or back to `open`);
//! - [`discard`]: `open` (or an expired lease) → `discarded`, never a
//!   dead letter under a live lease;
//! - [`reap_one`]: an expired lease gives its dead letter back (`open`).
//!
//! A dead letter given back to `open` while a newer open one holds the same
//! event (the replay failed again and stored it) is `replayed` instead: one
//! open dead letter per event.

use std::time::Duration;

use chrono::{DateTime, Utc};
use domain::status::DeadLetterState;
use sqlx::{PgExecutor, PgPool, Row};

use super::dead_letters::{COLUMNS, DeadLetter, DeadLetterId, from_row};

/// When a lease ends; a `replaying` row without one (taken before leases
/// existed) ends ten minutes after its last change.
const LEASE_END: &str = "COALESCE(lease_expires_at, updated_at + interval '10 minutes')";

/// True when the row `d` would break "one open dead letter per event" if
/// it were opened again.
const SUPERSEDED: &str = "d.event_key IS NOT NULL AND EXISTS (SELECT 1 FROM dead_letters o \
     WHERE o.event_key = d.event_key AND o.state = 'open' AND o.id <> d.id)";

/// Why a dead letter cannot be taken or discarded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unavailable {
    /// No such dead letter (or not the portal's).
    #[error("no such dead letter")]
    NotFound,
    /// A replay holds it under a live lease.
    #[error("already being replayed (by {holder} until {until}); try again once that replay ends")]
    Replaying {
        /// The lease's holder (`replay:<request id>`, `cli:<user>:<id>`).
        holder: String,
        /// When the lease ends unless renewed.
        until: DateTime<Utc>,
    },
    /// It is `replayed` or `discarded` already.
    #[error("the dead letter is {state}")]
    Closed {
        /// Its state.
        state: String,
    },
}

fn secs(ttl: Duration) -> f64 {
    ttl.as_secs_f64().max(1.0)
}

/// Why `id` (of `portal` when given) could not be changed: read after a
/// compare-and-set that changed nothing. `None`: it is available now (a
/// lease expired, or it was given back, in between).
async fn why<'e>(
    db: impl PgExecutor<'e>,
    id: DeadLetterId,
    portal: Option<i64>,
) -> Result<Option<Unavailable>, sqlx::Error> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT state, lease_holder, {LEASE_END} AS lease_end, {LEASE_END} < now() AS expired
         FROM dead_letters WHERE id = $1 AND ($2::bigint IS NULL OR portal_id = $2)"
    )))
    .bind(id.0)
    .bind(portal)
    .fetch_optional(db)
    .await?;
    let Some(r) = row else {
        return Ok(Some(Unavailable::NotFound));
    };
    let state: String = r.get("state");
    Ok(match state.as_str() {
        "open" => None,
        "replaying" if r.get::<bool, _>("expired") => None,
        "replaying" => Some(Unavailable::Replaying {
            holder: r
                .get::<Option<String>, _>("lease_holder")
                .unwrap_or_else(|| "an earlier version".into()),
            until: r.get("lease_end"),
        }),
        _ => Some(Unavailable::Closed { state }),
    })
}

/// Takes dead letter `id` for a replay by `holder` for `ttl` (only when it
/// is `portal`'s, when given).
pub async fn claim(
    pool: &PgPool,
    id: DeadLetterId,
    holder: &str,
    ttl: Duration,
    portal: Option<i64>,
) -> Result<Result<DeadLetter, Unavailable>, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    claim_on(&mut conn, id, holder, ttl, portal).await
}

/// [`claim`] on one connection (a transaction: the console reserves a dead
/// letter and records the replay request together).
pub async fn claim_on(
    conn: &mut sqlx::PgConnection,
    id: DeadLetterId,
    holder: &str,
    ttl: Duration,
    portal: Option<i64>,
) -> Result<Result<DeadLetter, Unavailable>, sqlx::Error> {
    let sql = format!(
        "UPDATE dead_letters SET state = 'replaying', lease_holder = $2,
             lease_expires_at = now() + make_interval(secs => $3), updated_at = now()
         WHERE id = $1 AND ($4::bigint IS NULL OR portal_id = $4)
           AND (state = 'open'
                OR (state = 'replaying' AND (lease_holder = $2 OR {LEASE_END} < now())))
         RETURNING {COLUMNS}"
    );
    // A lease that expires (or a dead letter given back) between the two
    // statements: take it on the next round.
    for _ in 0..3 {
        let row = sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
            .bind(id.0)
            .bind(holder)
            .bind(secs(ttl))
            .bind(portal)
            .fetch_optional(&mut *conn)
            .await?;
        if let Some(r) = row {
            return Ok(Ok(from_row(&r)));
        }
        if let Some(why) = why(&mut *conn, id, portal).await? {
            return Ok(Err(why));
        }
    }
    Ok(Err(Unavailable::NotFound))
}

/// Pushes `holder`'s lease on `id` to `ttl` from now; false when it holds
/// it no more (it expired and someone took or discarded the dead letter).
pub async fn renew(
    pool: &PgPool,
    id: DeadLetterId,
    holder: &str,
    ttl: Duration,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE dead_letters SET lease_expires_at = now() + make_interval(secs => $3)
         WHERE id = $1 AND state = 'replaying' AND lease_holder = $2",
    )
    .bind(id.0)
    .bind(holder)
    .bind(secs(ttl))
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Ends `holder`'s lease on `id`: `state` `replayed`, or `open` (a replay
/// that sent nothing gives it back), with who and how. False when `holder`
/// holds it no more (nothing is changed).
pub async fn finish<'e>(
    db: impl PgExecutor<'e>,
    id: DeadLetterId,
    holder: &str,
    state: DeadLetterState,
    by: &str,
    resolution: &str,
) -> Result<bool, sqlx::Error> {
    let sql = format!(
        "WITH target AS (
             SELECT d.id, CASE WHEN $3 = 'open' AND {SUPERSEDED} THEN 'replayed' ELSE $3 END AS state
             FROM dead_letters d
             WHERE d.id = $1 AND d.state = 'replaying' AND d.lease_holder = $2
             FOR UPDATE
         )
         UPDATE dead_letters d SET state = t.state, resolved_by = $4,
             resolution = CASE WHEN t.state = $3 THEN $5
                               ELSE $5 || ' (a newer dead letter holds the event)' END,
             resolved_at = CASE WHEN t.state = 'open' THEN NULL ELSE now() END,
             lease_holder = NULL, lease_expires_at = NULL, updated_at = now()
         FROM target t WHERE d.id = t.id"
    );
    let done = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id.0)
        .bind(holder)
        .bind(state.as_str())
        .bind(by)
        .bind(resolution)
        .execute(db)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Discards `id` as `by` for `reason`: an `open` dead letter, or one whose
/// replay's lease expired; never one a replay holds. `Ok` carries its portal.
pub async fn discard(
    pool: &PgPool,
    id: DeadLetterId,
    by: &str,
    reason: &str,
) -> Result<Result<Option<i64>, Unavailable>, sqlx::Error> {
    let sql = format!(
        "UPDATE dead_letters SET state = 'discarded', resolved_by = $2, resolution = $3,
             resolved_at = now(), lease_holder = NULL, lease_expires_at = NULL, updated_at = now()
         WHERE id = $1 AND (state = 'open' OR (state = 'replaying' AND {LEASE_END} < now()))
         RETURNING portal_id"
    );
    for _ in 0..3 {
        let row = sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
            .bind(id.0)
            .bind(by)
            .bind(reason)
            .fetch_optional(pool)
            .await?;
        if let Some(r) = row {
            return Ok(Ok(r.get("portal_id")));
        }
        if let Some(why) = why(pool, id, None).await? {
            return Ok(Err(why));
        }
    }
    Ok(Err(Unavailable::NotFound))
}

/// A dead letter whose lease expired, given back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reaped {
    /// The dead letter.
    pub id: DeadLetterId,
    /// Its portal.
    pub portal_id: Option<i64>,
    /// Who held the lease.
    pub holder: Option<String>,
    /// Its state now: `open`, or `replayed` when a newer open dead letter
    /// holds the same event.
    pub state: String,
}

/// Gives back one dead letter whose lease expired, if any (several reapers
/// skip each other's rows).
pub async fn reap_one(pool: &PgPool) -> Result<Option<Reaped>, sqlx::Error> {
    let sql = format!(
        "WITH one AS (
             SELECT id, lease_holder FROM dead_letters
             WHERE state = 'replaying' AND {LEASE_END} < now()
             ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED
         ), target AS (
             SELECT d.id, one.lease_holder,
                    CASE WHEN {SUPERSEDED} THEN 'replayed' ELSE 'open' END AS state
             FROM one JOIN dead_letters d ON d.id = one.id
         )
         UPDATE dead_letters d SET state = t.state,
             resolved_by = CASE WHEN t.state = 'open' THEN d.resolved_by ELSE 'lease-reaper' END,
             resolution = 'replay abandoned: the lease of ' || COALESCE(t.lease_holder, 'an earlier version')
                 || ' expired' || CASE WHEN t.state = 'open' THEN ''
                                       ELSE ' (a newer dead letter holds the event)' END,
             resolved_at = CASE WHEN t.state = 'open' THEN NULL ELSE now() END,
             lease_holder = NULL, lease_expires_at = NULL, updated_at = now()
         FROM target t WHERE d.id = t.id
         RETURNING d.id, d.portal_id, t.lease_holder, t.state"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_optional(pool)
        .await?;
    Ok(row.map(|r| Reaped {
        id: DeadLetterId(r.get("id")),
        portal_id: r.get("portal_id"),
        holder: r.get("lease_holder"),
        state: r.get("state"),
    }))
}
