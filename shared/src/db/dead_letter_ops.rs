//! Operators' dead-letter operations shared by the worker's CLI and the
//! console's admin API: discarding a dead letter, parsing filters.

use crate::db::{
    self,
    dead_letters::{DeadLetterId, Filter, ReasonClass},
};
use chrono::{DateTime, Utc};
use domain::status::DeadLetterState;
use serde_json::json;
use sqlx::PgPool;

/// A time an operator wrote that is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a time (RFC 3339, YYYY-MM-DD, or an age like 2h)")]
pub struct BadTime(pub String);

/// How a discard ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Discarded {
    /// Discarded now.
    Discarded,
    /// No open dead letter with that id.
    NotOpen,
}

/// Discards open dead letter `id` as `actor`, for `reason` (audited when
/// the dead letter exists).
pub async fn discard(
    pool: &PgPool,
    id: DeadLetterId,
    actor: &str,
    reason: &str,
) -> Result<Discarded, sqlx::Error> {
    let letter = db::dead_letters::get(pool, id).await?;
    let open = letter
        .as_ref()
        .is_some_and(db::dead_letters::DeadLetter::is_open);
    let done = open
        && db::dead_letters::resolve(pool, id, DeadLetterState::Discarded, actor, reason).await?;
    let outcome = if done {
        Discarded::Discarded
    } else {
        Discarded::NotOpen
    };
    // A dead letter that does not exist leaves nothing to audit.
    if let Some(letter) = &letter {
        let detail = json!({ "dead_letter": id, "reason": reason });
        let label = if done { "discarded" } else { "not_open" };
        db::audit::record(
            pool,
            letter.portal_id,
            actor,
            "dead_letter.discard",
            &detail,
            label,
        )
        .await?;
    }
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
