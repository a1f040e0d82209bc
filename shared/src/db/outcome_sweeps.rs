//! Submission outcomes decided in bulk (migration
//! `20261204000004_outcome_sweeps.sql`): the recent undecided conversions a
//! listing of impact.com's actions can decide, the lease that lets one
//! worker list a program's actions per interval, the verdicts stored in one
//! statement, and how far behind the verdicts are.

use chrono::{DateTime, Utc};
use sqlx::{PgExecutor, Row};

/// A delivered conversion without a verdict, delivered recently enough to
/// be looked for among the listed actions.
#[derive(Debug, Clone)]
pub struct SweepCandidate {
    /// Conversion id.
    pub id: i64,
    /// Portal.
    pub portal_id: i64,
    /// The QueuedUri (a resend since changes it: the verdict is then not stored).
    pub queued_uri: String,
    /// OrderId sent.
    pub order_id: String,
    /// When the conversion was recorded.
    pub created_at: DateTime<Utc>,
    /// The `CampaignId` sent.
    pub campaign_id: Option<String>,
    /// The event type parameter sent (`ActionTrackerId`, `EventTypeId` or
    /// `EventTypeCode`, in impact.com's order of precedence) and its value.
    pub event: Option<(String, String)>,
}

/// Up to `limit` conversions delivered less than `grace_secs` ago and still
/// undecided, oldest recorded first (the rows the poller has not read one by one yet:
/// `outcome_next_check_at` is NULL). The parameters needed to match them
/// are picked out of the payload here.
pub async fn candidates<'e>(
    db: impl PgExecutor<'e>,
    grace_secs: i64,
    limit: i64,
) -> Result<Vec<SweepCandidate>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT c.id, c.portal_id, c.queued_uri, c.order_id, c.created_at,
             (SELECT e->>1 FROM json_array_elements(c.payload) e
              WHERE e->>0 = 'CampaignId' LIMIT 1) AS campaign_id,
             (SELECT ARRAY[e->>0, e->>1] FROM json_array_elements(c.payload) e
              WHERE e->>0 IN ('ActionTrackerId', 'EventTypeId', 'EventTypeCode')
                AND btrim(e->>1) <> ''
              ORDER BY array_position(ARRAY['ActionTrackerId', 'EventTypeId', 'EventTypeCode'], e->>0)
              LIMIT 1) AS event
         FROM conversions c
         WHERE c.status = 'delivered' AND c.outcome IS NULL AND c.queued_uri IS NOT NULL
           AND c.outcome_next_check_at IS NULL
           AND c.delivered_at > now() - make_interval(secs => $1)
         ORDER BY c.created_at LIMIT $2",
    )
    .bind(grace_secs as f64)
    .bind(limit)
    .fetch_all(db)
    .await?;
    rows.into_iter()
        .map(|r| {
            let event: Option<Vec<String>> = r.try_get("event")?;
            Ok(SweepCandidate {
                id: r.try_get("id")?,
                portal_id: r.try_get("portal_id")?,
                queued_uri: r.try_get("queued_uri")?,
                order_id: r.try_get("order_id")?,
                created_at: r.try_get("created_at")?,
                campaign_id: r.try_get("campaign_id")?,
                event: event.and_then(|e| match e.as_slice() {
                    [k, v] => Some((k.clone(), v.clone())),
                    _ => None,
                }),
            })
        })
        .collect()
}

/// Takes the lease on listing `(account, campaign)`'s actions for
/// `lease_secs`: true when this caller may list them now (no other worker
/// did within the lease).
pub async fn claim<'e>(
    db: impl PgExecutor<'e>,
    account_sid: &str,
    campaign_id: &str,
    lease_secs: f64,
) -> Result<bool, sqlx::Error> {
    let row = sqlx::query(
        "INSERT INTO outcome_sweeps (account_sid, campaign_id, next_at, swept_at)
         VALUES ($1, $2, now() + make_interval(secs => $3), now())
         ON CONFLICT (account_sid, campaign_id) DO UPDATE
             SET next_at = EXCLUDED.next_at, swept_at = now()
             WHERE outcome_sweeps.next_at <= now()
         RETURNING 1",
    )
    .bind(account_sid)
    .bind(campaign_id)
    .bind(lease_secs)
    .fetch_optional(db)
    .await?;
    Ok(row.is_some())
}

/// Ends the lease on `(account, campaign)` only `secs` from now: a listing
/// impact.com refused rests meanwhile.
pub async fn postpone<'e>(
    db: impl PgExecutor<'e>,
    account_sid: &str,
    campaign_id: &str,
    secs: f64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE outcome_sweeps SET next_at = now() + make_interval(secs => $3)
         WHERE account_sid = $1 AND campaign_id = $2",
    )
    .bind(account_sid)
    .bind(campaign_id)
    .bind(secs)
    .execute(db)
    .await
    .map(|_| ())
}

/// Stores `complete` for the conversions the listed actions show credited
/// (`(id, queued_uri)` pairs; a row resent or decided since is left alone).
/// Returns the ids stored.
pub async fn decide_credited<'e>(
    db: impl PgExecutor<'e>,
    credited: &[(i64, String)],
) -> Result<Vec<i64>, sqlx::Error> {
    if credited.is_empty() {
        return Ok(vec![]);
    }
    let (ids, uris): (Vec<i64>, Vec<String>) = credited.iter().cloned().unzip();
    sqlx::query_scalar(
        "UPDATE conversions c SET outcome = 'complete', submission_status = 'Complete',
             error_type = NULL, error_reason = NULL, outcome_checked_at = now(),
             outcome_next_check_at = NULL, updated_at = now()
         FROM unnest($1::bigint[], $2::text[]) AS d(id, uri)
         WHERE c.id = d.id AND c.queued_uri = d.uri AND c.outcome IS NULL
         RETURNING c.id",
    )
    .bind(ids)
    .bind(uris)
    .fetch_all(db)
    .await
}

/// How far behind the verdicts are.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Lag {
    /// Delivered conversions without a verdict (being followed).
    pub undecided: i64,
    /// Age of the oldest of them, in seconds (0 when there is none).
    pub oldest_secs: f64,
}

/// The undecided delivered conversions: how many, and the oldest's age.
pub async fn lag<'e>(db: impl PgExecutor<'e>) -> Result<Lag, sqlx::Error> {
    let row = sqlx::query(
        "SELECT count(*) AS n,
                coalesce(extract(epoch FROM now() - min(delivered_at))::float8, 0) AS oldest
         FROM conversions
         WHERE status = 'delivered' AND outcome IS NULL AND queued_uri IS NOT NULL",
    )
    .fetch_one(db)
    .await?;
    Ok(Lag {
        undecided: row.try_get("n")?,
        oldest_secs: row.try_get::<f64, _>("oldest")?.max(0.0),
    })
}
