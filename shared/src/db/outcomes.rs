//! Submission outcomes of delivered conversions (migration
//! `20261127000004_outcomes_privacy.sql`): the poller's work list, its
//! verdicts, and the listing behind `worker conversions list`.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgExecutor, Row};

/// A delivered conversion whose submission is to be looked at.
#[derive(Debug, Clone)]
pub struct DueSubmission {
    /// Conversion id.
    pub id: i64,
    /// Portal.
    pub portal_id: i64,
    /// Where impact.com reports the submission's state.
    pub queued_uri: String,
    /// Delivery attempts (more than one: it was resent).
    pub attempts: i32,
    /// Looks so far.
    pub checks: i32,
    /// When it was delivered.
    pub delivered_at: Option<DateTime<Utc>>,
}

/// Claims up to `limit` due submissions: their next check moves `lease_secs`
/// ahead in the same statement, and rows another worker is claiming are
/// skipped (`FOR UPDATE SKIP LOCKED`), so several workers never poll the
/// same submission at once. A worker that dies mid-pass leaves its rows to
/// be picked up again when the lease ends.
///
/// Two ranges of the work list (`conversions_outcome_due`, which reads no
/// column a first delivery sets, so that the delivery is a HOT update):
/// first looks, rows never claimed (`outcome_next_check_at IS NULL`)
/// recorded and delivered at least `first_after_secs` ago; and later looks,
/// `outcome_next_check_at <= now()`. The oldest due of both come first.
pub async fn claim_due<'e>(
    db: impl PgExecutor<'e>,
    first_after_secs: i64,
    lease_secs: i64,
    limit: i64,
) -> Result<Vec<DueSubmission>, sqlx::Error> {
    let rows = sqlx::query(
        "WITH later AS (
             SELECT id, outcome_next_check_at AS due FROM conversions
             WHERE outcome IS NULL AND outcome_next_check_at <= now()
               AND status = 'delivered' AND queued_uri IS NOT NULL
             ORDER BY outcome_next_check_at LIMIT $3 FOR UPDATE SKIP LOCKED
         ), first AS (
             SELECT id, delivered_at + make_interval(secs => $1) AS due FROM conversions
             WHERE outcome IS NULL AND outcome_next_check_at IS NULL
               AND created_at <= now() - make_interval(secs => $1)
               AND status = 'delivered' AND queued_uri IS NOT NULL
               AND delivered_at <= now() - make_interval(secs => $1)
             ORDER BY created_at LIMIT $3 FOR UPDATE SKIP LOCKED
         ), d AS (
             SELECT id FROM (SELECT * FROM later UNION ALL SELECT * FROM first) due
             ORDER BY due LIMIT $3
         )
         UPDATE conversions c SET outcome_next_check_at = now() + make_interval(secs => $2)
         FROM d WHERE c.id = d.id
         RETURNING c.id, c.portal_id, c.queued_uri, c.attempts, c.outcome_checks, c.delivered_at",
    )
    .bind(first_after_secs as f64)
    .bind(lease_secs as f64)
    .bind(limit)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| DueSubmission {
            id: r.get("id"),
            portal_id: r.get("portal_id"),
            queued_uri: r.get("queued_uri"),
            attempts: r.get("attempts"),
            checks: r.get("outcome_checks"),
            delivered_at: r.get("delivered_at"),
        })
        .collect())
}

/// Takes out of the first-look range (`outcome_next_check_at = 'infinity'`)
/// up to `limit` conversions recorded more than `first_after_secs` ago that
/// have nothing to look at: failed, or delivered without a QueuedUri. The
/// poller would otherwise read past them on every pass. A later delivery
/// (a replay) puts a row back (`mark_delivered_many` clears the column).
/// Returns how many were moved.
pub async fn retire_unlookable<'e>(
    db: impl PgExecutor<'e>,
    first_after_secs: i64,
    limit: i64,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE conversions SET outcome_next_check_at = 'infinity'
         WHERE id IN (
             SELECT id FROM conversions
             WHERE outcome IS NULL AND outcome_next_check_at IS NULL
               AND created_at <= now() - make_interval(secs => $1)
               AND (status = 'failed' OR (status = 'delivered' AND queued_uri IS NULL))
             ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED)",
    )
    .bind(first_after_secs as f64)
    .bind(limit)
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}

/// Not complete yet (or not asked: budget, outage): look again after `after_secs`.
pub async fn check_later<'e>(
    db: impl PgExecutor<'e>,
    id: i64,
    submission_status: Option<&str>,
    counted: bool,
    after_secs: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE conversions SET
             submission_status = coalesce($2, submission_status),
             outcome_checks = outcome_checks + CASE WHEN $3 THEN 1 ELSE 0 END,
             outcome_checked_at = CASE WHEN $3 THEN now() ELSE outcome_checked_at END,
             outcome_next_check_at = now() + make_interval(secs => $4)
         WHERE id = $1 AND outcome IS NULL",
    )
    .bind(id)
    .bind(submission_status)
    .bind(counted)
    .bind(after_secs as f64)
    .execute(db)
    .await
    .map(|_| ())
}

/// The final verdict on a submission.
#[derive(Debug, Clone, Copy)]
pub struct Verdict<'a> {
    /// `complete`, `rejected`, `duplicate_resend` or `unknown`.
    pub outcome: &'a str,
    /// The submission's last Status, if known.
    pub submission_status: Option<&'a str>,
    /// impact.com's ErrorType.
    pub error_type: Option<&'a str>,
    /// impact.com's ErrorReason.
    pub error_reason: Option<&'a str>,
}

/// Stores the verdict (only on a row still undecided: a resend since the
/// claim reset it, and the new submission is followed from scratch).
pub async fn decide<'e>(
    db: impl PgExecutor<'e>,
    id: i64,
    queued_uri: &str,
    v: Verdict<'_>,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE conversions SET outcome = $3, submission_status = coalesce($4, submission_status),
             error_type = $5, error_reason = $6, outcome_checks = outcome_checks + 1,
             outcome_checked_at = now(), outcome_next_check_at = NULL, updated_at = now()
         WHERE id = $1 AND queued_uri = $2 AND outcome IS NULL",
    )
    .bind(id)
    .bind(queued_uri)
    .bind(v.outcome)
    .bind(v.submission_status)
    .bind(v.error_type)
    .bind(v.error_reason)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A conversion as listed by `worker conversions list`.
#[derive(Debug, Clone, Serialize)]
pub struct ConversionSummary {
    /// Row id.
    pub id: i64,
    /// Portal.
    pub portal_id: i64,
    /// Event type sent.
    pub event_type: String,
    /// OrderId sent.
    pub order_id: String,
    /// `contacts`, `companies`, `deals`.
    pub object_type: String,
    /// The HubSpot record.
    pub object_id: i64,
    /// Delivery status: `pending`, `delivered`, `failed`.
    pub status: String,
    /// Submission outcome (`null` while being followed).
    pub outcome: Option<String>,
    /// The submission's last Status.
    pub submission_status: Option<String>,
    /// impact.com's ErrorType.
    pub error_type: Option<String>,
    /// impact.com's ErrorReason.
    pub error_reason: Option<String>,
    /// Why delivery failed, for `failed` ones.
    pub failure_reason: Option<String>,
    /// The QueuedUri.
    pub queued_uri: Option<String>,
    /// Attempts.
    pub attempts: i32,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// The record `object_id` was merged into in HubSpot (`null`: not
    /// merged): the conversion is that record's now.
    pub merged_into: Option<i64>,
}

/// Which conversions to list.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// Only this portal.
    pub portal: Option<i64>,
    /// `pending`, `delivered`, `failed` (delivery status); `queued` (delivered,
    /// outcome not known yet); `complete`, `rejected`, `duplicate_resend`,
    /// `unknown` (outcome).
    pub status: Option<String>,
    /// At most this many, newest first.
    pub limit: i64,
    /// Only this HubSpot record's conversions, including those recorded
    /// under ids merged into it.
    pub object_id: Option<i64>,
    /// Only this object type (`contacts`, `companies`, `deals`).
    pub object_type: Option<String>,
}

/// The statuses [`ListFilter::status`] accepts.
pub const LIST_STATUSES: &[&str] = &[
    "pending",
    "delivered",
    "failed",
    "queued",
    "complete",
    "rejected",
    "duplicate_resend",
    "unknown",
];

/// Lists conversions, newest first.
pub async fn list<'e>(
    db: impl PgExecutor<'e>,
    f: &ListFilter,
) -> Result<Vec<ConversionSummary>, sqlx::Error> {
    let (status, outcome, queued) = match f.status.as_deref() {
        None => (None, None, false),
        Some(s @ ("pending" | "delivered" | "failed")) => (Some(s), None, false),
        Some("queued") => (Some("delivered"), None, true),
        Some(o) => (None, Some(o), false),
    };
    let rows = sqlx::query(
        "SELECT c.id, c.portal_id, c.event_type, c.order_id, c.object_type, c.object_id, c.status,
                c.outcome, c.submission_status, c.error_type, c.error_reason, c.failure_reason,
                c.queued_uri, c.attempts, c.updated_at, m.survivor_id AS merged_into
         FROM conversions c
         LEFT JOIN object_merges m ON m.portal_id = c.portal_id
             AND m.object_type = c.object_type AND m.merged_id = c.object_id
         WHERE ($1::bigint IS NULL OR c.portal_id = $1)
           AND ($2::text IS NULL OR c.status = $2)
           AND ($3::text IS NULL OR c.outcome = $3)
           AND (NOT $4 OR c.outcome IS NULL)
           AND ($6::text IS NULL OR c.object_type = $6)
           AND ($7::bigint IS NULL OR c.object_id = $7 OR m.survivor_id = $7)
         ORDER BY c.id DESC LIMIT $5",
    )
    .bind(f.portal)
    .bind(status)
    .bind(outcome)
    .bind(queued)
    .bind(f.limit.max(1))
    .bind(f.object_type.as_deref())
    .bind(f.object_id)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| ConversionSummary {
            id: r.get("id"),
            portal_id: r.get("portal_id"),
            event_type: r.get("event_type"),
            order_id: r.get("order_id"),
            object_type: r.get("object_type"),
            object_id: r.get("object_id"),
            status: r.get("status"),
            outcome: r.get("outcome"),
            submission_status: r.get("submission_status"),
            error_type: r.get("error_type"),
            error_reason: r.get("error_reason"),
            failure_reason: r.get("failure_reason"),
            queued_uri: r.get("queued_uri"),
            attempts: r.get("attempts"),
            updated_at: r.get("updated_at"),
            merged_into: r.get("merged_into"),
        })
        .collect())
}
