//! Operators' dead-letter operations shared by the worker's CLI and the
//! console's admin API: discarding a dead letter, parsing filters.

use crate::db::{
    self,
    dead_letter_leases::{self as leases, Unavailable},
    dead_letters::{DeadLetterId, Filter, ReasonClass},
};
use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::PgPool;

/// A time an operator wrote that is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a time (RFC 3339, YYYY-MM-DD, or an age like 2h)")]
pub struct BadTime(pub String);

/// How a discard ended.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Discarded {
    /// Discarded now.
    Discarded,
    /// No dead letter with that id.
    NotFound,
    /// Replayed or discarded already.
    NotOpen {
        /// Its state.
        state: String,
    },
    /// A replay holds it under a live lease: refused, so the replay's
    /// outcome is never overwritten.
    Replaying {
        /// The lease's holder.
        holder: String,
        /// When the lease ends unless renewed.
        until: chrono::DateTime<Utc>,
    },
}

impl Discarded {
    /// The audit log's outcome label.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Discarded => "discarded",
            Self::NotFound => "not_found",
            Self::NotOpen { .. } => "not_open",
            Self::Replaying { .. } => "replaying",
        }
    }
}

/// Discards dead letter `id` as `actor`, for `reason`: an open one, or one
/// whose replay's lease expired; never one a live replay holds (one
/// compare-and-set, so a discard racing a replay never overwrites it).
/// Audited when the dead letter exists.
pub async fn discard(
    pool: &PgPool,
    id: DeadLetterId,
    actor: &str,
    reason: &str,
) -> Result<Discarded, sqlx::Error> {
    let outcome = match leases::discard(pool, id, actor, reason).await? {
        Ok(_) => Discarded::Discarded,
        Err(Unavailable::NotFound) => return Ok(Discarded::NotFound),
        Err(Unavailable::Closed { state }) => Discarded::NotOpen { state },
        Err(Unavailable::Replaying { holder, until }) => Discarded::Replaying { holder, until },
    };
    let portal = db::dead_letters::get(pool, id)
        .await?
        .and_then(|l| l.portal_id);
    let detail = json!({ "dead_letter": id, "reason": reason });
    db::audit::record(
        pool,
        portal,
        actor,
        "dead_letter.discard",
        &detail,
        outcome.as_str(),
    )
    .await?;
    Ok(outcome)
}

/// Parses a time: RFC 3339 (`2026-11-27T10:00:00Z`), a date (`2026-11-27`),
/// or an age (`2h`, `3d`, `90m`) meaning that long ago.
pub fn parse_time(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, BadTime> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc());
    }
    crate::config::parse_schedule(text)
        .ok()
        .and_then(|d| d.first().copied())
        .and_then(|d| chrono::Duration::from_std(d).ok())
        .map(|d| now - d)
        .ok_or_else(|| BadTime(text.to_owned()))
}

/// A filter from operator inputs.
#[allow(clippy::too_many_arguments)]
pub fn filter(
    id: Option<i64>,
    portal: Option<i64>,
    object_type: Option<String>,
    reason_class: Option<ReasonClass>,
    since: Option<&str>,
    until: Option<&str>,
    text: Option<String>,
    state: Option<String>,
    limit: Option<i64>,
) -> Result<Filter, BadTime> {
    let now = Utc::now();
    Ok(Filter {
        id,
        portal,
        object_type,
        reason_class,
        since: since.map(|s| parse_time(s, now)).transpose()?,
        until: until.map(|s| parse_time(s, now)).transpose()?,
        text,
        state,
        limit,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_read_as_instants_dates_or_ages() {
        let now = DateTime::parse_from_rfc3339("2026-11-27T12:00:00Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default();
        assert_eq!(
            parse_time("2026-11-27T10:00:00Z", now).map(|t| t.to_rfc3339()),
            Ok("2026-11-27T10:00:00+00:00".into())
        );
        assert_eq!(
            parse_time("2026-11-26", now).map(|t| t.to_rfc3339()),
            Ok("2026-11-26T00:00:00+00:00".into())
        );
        assert_eq!(
            parse_time("2h", now).map(|t| t.to_rfc3339()),
            Ok("2026-11-27T10:00:00+00:00".into())
        );
        assert!(parse_time("yesterday-ish", now).is_err());
    }
}
