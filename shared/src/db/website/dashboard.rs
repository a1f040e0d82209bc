//! The dashboard's reads: the last webhook per subscription type, the
//! conversions of the last 7 days per hour, impact.com's outcomes and the
//! open dead letters of one portal.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgPool, Row};

use super::stamp;

/// The events of one subscription type received in the last 7 days.
#[derive(Debug, Clone, Serialize)]
pub struct WebhookType {
    /// `contact.creation`, `deal.propertyChange`, ...
    pub subscription_type: String,
    /// The last one the worker finished with (RFC 3339), if any in 7 days.
    pub last_at: Option<String>,
    /// How many in the last 7 days.
    pub count: i64,
    /// Seconds between the first and the last of them divided by their
    /// gaps: the usual silence (`None` with fewer than 2 events).
    pub usual_gap_secs: Option<i64>,
    /// Seconds since the last one.
    pub silent_secs: Option<i64>,
}

/// The portal's webhook events of the last 7 days, per subscription type.
pub async fn webhook_types(pool: &PgPool, portal: i64) -> Result<Vec<WebhookType>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT subscription_type, count(*) AS n,
                min(coalesce(received_at, processed_at)) AS first,
                max(coalesce(received_at, processed_at)) AS last, now() AS now
         FROM webhook_events
         WHERE portal_id = $1 AND processed_at > now() - interval '7 days'
         GROUP BY subscription_type ORDER BY subscription_type",
    )
    .bind(portal)
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|r| {
            let n: i64 = r.try_get("n")?;
            let first: DateTime<Utc> = r.try_get("first")?;
            let last: DateTime<Utc> = r.try_get("last")?;
            let now: DateTime<Utc> = r.try_get("now")?;
            Ok(WebhookType {
                subscription_type: r.try_get("subscription_type")?,
                last_at: Some(stamp(last)),
                count: n,
                usual_gap_secs: (n > 1).then(|| (last - first).num_seconds() / (n - 1)),
                silent_secs: Some((now - last).num_seconds().max(0)),
            })
        })
        .collect()
}

/// One hour of the chart.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct HourCounts {
    /// The hour's start (RFC 3339, UTC).
    pub hour: String,
    /// Delivered (impact.com queued them) and not rejected.
    pub delivered: i64,
    /// Delivered, then rejected by impact.com (outcome `rejected`).
    pub rejected: i64,
    /// Events dead-lettered in that hour.
    pub dead_lettered: i64,
}

/// The last 7 days, hour by hour (168 hours, oldest first, the current
/// hour last): conversions by the hour they were delivered, dead letters
/// by the hour they were written.
pub async fn hourly(pool: &PgPool, portal: i64) -> Result<Vec<HourCounts>, sqlx::Error> {
    let rows = sqlx::query(
        "WITH hours AS (
             SELECT generate_series(date_trunc('hour', now()) - interval '167 hours',
                                    date_trunc('hour', now()), interval '1 hour') AS hour
         ), c AS (
             SELECT date_trunc('hour', delivered_at) AS hour,
                    count(*) FILTER (WHERE outcome IS DISTINCT FROM 'rejected') AS delivered,
                    count(*) FILTER (WHERE outcome = 'rejected') AS rejected
             FROM conversions
             WHERE portal_id = $1 AND status = 'delivered'
               AND delivered_at >= date_trunc('hour', now()) - interval '167 hours'
             GROUP BY 1
         ), d AS (
             SELECT date_trunc('hour', created_at) AS hour, count(*) AS dead
             FROM dead_letters
             WHERE portal_id = $1 AND created_at >= date_trunc('hour', now()) - interval '167 hours'
               AND reason <> 'resend_requested'
             GROUP BY 1
         )
         SELECT hours.hour, coalesce(c.delivered, 0) AS delivered, coalesce(c.rejected, 0) AS rejected,
                coalesce(d.dead, 0) AS dead
         FROM hours LEFT JOIN c USING (hour) LEFT JOIN d USING (hour) ORDER BY hours.hour",
    )
    .bind(portal)
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(HourCounts {
                hour: stamp(r.try_get("hour")?),
                delivered: r.try_get("delivered")?,
                rejected: r.try_get("rejected")?,
                dead_lettered: r.try_get("dead")?,
            })
        })
        .collect()
}

/// impact.com's verdicts on the conversions delivered in the last 7 days.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Outcomes {
    /// Credited (`complete`, and `duplicate_resend`: the first send went through).
    pub complete: i64,
    /// Rejected (an ErrorReason).
    pub rejected: i64,
    /// Not known: impact.com never said.
    pub unknown: i64,
    /// Still being followed.
    pub pending: i64,
}

impl Outcomes {
    /// All of them.
    pub fn total(&self) -> i64 {
        self.complete + self.rejected + self.unknown + self.pending
    }
}

/// The outcomes of the portal's conversions delivered in the last 7 days.
pub async fn outcomes(pool: &PgPool, portal: i64) -> Result<Outcomes, sqlx::Error> {
    let r = sqlx::query(
        "SELECT count(*) FILTER (WHERE outcome IN ('complete', 'duplicate_resend')) AS complete,
                count(*) FILTER (WHERE outcome = 'rejected') AS rejected,
                count(*) FILTER (WHERE outcome = 'unknown') AS unknown,
                count(*) FILTER (WHERE outcome IS NULL) AS pending
         FROM conversions
         WHERE portal_id = $1 AND status = 'delivered' AND delivered_at > now() - interval '7 days'",
    )
    .bind(portal)
    .fetch_one(pool)
    .await?;
    Ok(Outcomes {
        complete: r.try_get("complete")?,
        rejected: r.try_get("rejected")?,
        unknown: r.try_get("unknown")?,
        pending: r.try_get("pending")?,
    })
}

/// How many of the portal's dead letters are unresolved (open or being
/// replayed).
pub async fn open_dead_letters(pool: &PgPool, portal: i64) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT count(*) FROM dead_letters WHERE portal_id = $1 AND state IN ('open', 'replaying')",
    )
    .bind(portal)
    .fetch_one(pool)
    .await
}

/// The portal's credentials health: impact.com's (`unknown`, `ok`,
/// `failing`, with the last refusal) as the worker last saw it.
pub async fn credentials(
    pool: &PgPool,
    portal: i64,
) -> Result<Option<(String, Option<String>)>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT credentials_status, credentials_error FROM portals WHERE portal_id = $1",
    )
    .bind(portal)
    .fetch_optional(pool)
    .await?;
    row.map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).transpose()
}
