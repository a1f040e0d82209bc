//! The `dead_letters` table: events the pipeline gave up on, kept with the
//! last error, the fetched object and the payload, for operators to inspect,
//! replay or discard.

use chrono::{DateTime, Utc};
use domain::status::DeadLetterState;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::{PgExecutor, PgPool, Postgres, QueryBuilder, Row, postgres::PgRow};

/// A dead letter's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DeadLetterId(pub i64);

impl std::fmt::Display for DeadLetterId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Why an event was given up on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReasonClass {
    /// Refused input: impact.com 4xx, mapping incomplete, object deleted.
    Permanent,
    /// Transient failures outlasted the retry ladder.
    Exhausted,
    /// Cut off by the work queue's delivery limit (crash or panic).
    Poison,
    /// The message body is not events.
    Malformed,
    /// An event of a delivery ingest could not read (e.g. a non-numeric
    /// `objectId`), kept as sent; it cannot be replayed.
    Invalid,
}

impl ReasonClass {
    /// Every class.
    pub const ALL: [ReasonClass; 5] = [
        Self::Permanent,
        Self::Exhausted,
        Self::Poison,
        Self::Malformed,
        Self::Invalid,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Permanent => "permanent",
            Self::Exhausted => "exhausted",
            Self::Poison => "poison",
            Self::Malformed => "malformed",
            Self::Invalid => "invalid",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

impl std::str::FromStr for ReasonClass {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::parse(s).ok_or_else(|| {
            format!("unknown reason class {s:?} (permanent, exhausted, poison, malformed, invalid)")
        })
    }
}

/// A dead letter to store.
#[derive(Debug, Clone, Default)]
pub struct NewDeadLetter {
    /// Portal (absent for unreadable messages).
    pub portal_id: Option<i64>,
    /// `contacts`, `companies`, `deals`.
    pub object_type: Option<String>,
    /// The record.
    pub object_id: Option<i64>,
    /// Class (stored as text).
    pub reason_class: Option<ReasonClass>,
    /// Reason code.
    pub reason: String,
    /// Last HTTP status, when there was one.
    pub last_status: Option<u16>,
    /// Last error detail (never secrets).
    pub last_error: Option<String>,
    /// Attempts made.
    pub attempts: i32,
    /// The event(s) as queued.
    pub events: Value,
    /// Identity of a single event (dedupes repeated writes).
    pub event_key: Option<String>,
    /// The object as fetched.
    pub fetched_object: Option<Value>,
    /// The parameters sent or that would have been sent.
    pub payload: Option<Value>,
    /// The conversion row, when one was recorded.
    pub conversion_id: Option<i64>,
    /// The adjustment (reversal, modification) that failed, if it is one.
    pub adjustment_id: Option<i64>,
}

/// Stores a dead letter; `None` when an open one for the same event exists.
pub async fn insert<'e>(
    db: impl PgExecutor<'e>,
    d: &NewDeadLetter,
) -> Result<Option<DeadLetterId>, sqlx::Error> {
    let class = d.reason_class.unwrap_or(ReasonClass::Permanent);
    let row = sqlx::query(
        "INSERT INTO dead_letters (portal_id, object_type, object_id, reason_class, reason,
             last_status, last_error, attempts, events, event_key, fetched_object, payload, conversion_id,
             adjustment_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
         ON CONFLICT (event_key) WHERE state = 'open' AND event_key IS NOT NULL DO NOTHING
         RETURNING id",
    )
    .bind(d.portal_id)
    .bind(&d.object_type)
    .bind(d.object_id)
    .bind(class.as_str())
    .bind(&d.reason)
    .bind(d.last_status.map(i32::from))
    .bind(&d.last_error)
    .bind(d.attempts)
    .bind(&d.events)
    .bind(&d.event_key)
    .bind(&d.fetched_object)
    .bind(&d.payload)
    .bind(d.conversion_id)
    .bind(d.adjustment_id)
    .fetch_optional(db)
    .await?;
    Ok(row.map(|r| DeadLetterId(r.get(0))))
}

/// A stored dead letter.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeadLetter {
    /// Id.
    pub id: DeadLetterId,
    /// Portal.
    pub portal_id: Option<i64>,
    /// Object type.
    pub object_type: Option<String>,
    /// Object id.
    pub object_id: Option<i64>,
    /// `permanent`, `exhausted`, `poison`, `malformed`, `invalid`.
    pub reason_class: String,
    /// Reason code.
    pub reason: String,
    /// Last HTTP status.
    pub last_status: Option<i32>,
    /// Last error detail.
    pub last_error: Option<String>,
    /// Attempts made.
    pub attempts: i32,
    /// The event(s).
    pub events: Value,
    /// The object as fetched.
    pub fetched_object: Option<Value>,
    /// The parameters sent or that would have been sent.
    pub payload: Option<Value>,
    /// The conversion row.
    pub conversion_id: Option<i64>,
    /// The adjustment row, when the dead letter is a failed adjustment.
    pub adjustment_id: Option<i64>,
    /// `open`, `replaying`, `replayed`, `discarded`.
    pub state: String,
    /// While `replaying`: who holds the replay's lease
    /// ([`super::dead_letter_leases`]).
    pub lease_holder: Option<String>,
    /// While `replaying`: when the lease ends unless renewed (past: the
    /// replay was abandoned; the dead letter can be taken again).
    pub lease_expires_at: Option<DateTime<Utc>>,
    /// Who resolved it.
    pub resolved_by: Option<String>,
    /// How (replay outcome or discard reason).
    pub resolution: Option<String>,
    /// When it was resolved.
    pub resolved_at: Option<DateTime<Utc>>,
    /// When it was stored.
    pub created_at: DateTime<Utc>,
}

impl DeadLetter {
    /// Whether it waits for an operator (`state` is `open`).
    pub fn is_open(&self) -> bool {
        self.state == DeadLetterState::Open.as_str()
    }
}

pub(super) const COLUMNS: &str = "id, portal_id, object_type, object_id, reason_class, reason, last_status,
    last_error, attempts, events, fetched_object, payload, conversion_id, adjustment_id, state, resolved_by,
    resolution, resolved_at, created_at, lease_holder, lease_expires_at";

pub(super) fn from_row(r: &PgRow) -> DeadLetter {
    DeadLetter {
        id: DeadLetterId(r.get("id")),
        portal_id: r.get("portal_id"),
        object_type: r.get("object_type"),
        object_id: r.get("object_id"),
        reason_class: r.get("reason_class"),
        reason: r.get("reason"),
        last_status: r.get("last_status"),
        last_error: r.get("last_error"),
        attempts: r.get("attempts"),
        events: r.get("events"),
        fetched_object: r.get("fetched_object"),
        payload: r.get("payload"),
        conversion_id: r.get("conversion_id"),
        adjustment_id: r.get("adjustment_id"),
        state: r.get("state"),
        lease_holder: r.get("lease_holder"),
        lease_expires_at: r.get("lease_expires_at"),
        resolved_by: r.get("resolved_by"),
        resolution: r.get("resolution"),
        resolved_at: r.get("resolved_at"),
        created_at: r.get("created_at"),
    }
}

/// Which dead letters to list or replay. Empty fields match everything.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Filter {
    /// One dead letter.
    pub id: Option<i64>,
    /// Portal.
    pub portal: Option<i64>,
    /// Object type.
    pub object_type: Option<String>,
    /// Reason class.
    pub reason_class: Option<ReasonClass>,
    /// Stored at or after.
    pub since: Option<DateTime<Utc>>,
    /// Stored before.
    pub until: Option<DateTime<Utc>>,
    /// Text in the error or the reason (case-insensitive).
    pub text: Option<String>,
    /// State; `None` means the unresolved ones (`open` and `replaying`),
    /// `"all"` every state.
    pub state: Option<String>,
    /// Most rows returned (default 100, at most 10,000).
    pub limit: Option<i64>,
}

/// Dead letters matching `f`, oldest first.
pub async fn list(pool: &PgPool, f: &Filter) -> Result<Vec<DeadLetter>, sqlx::Error> {
    let mut q =
        QueryBuilder::<Postgres>::new(format!("SELECT {COLUMNS} FROM dead_letters WHERE true"));
    match f.state.as_deref() {
        Some("all") => {}
        // A dead letter being replayed stays listed (with its state).
        None => {
            q.push(" AND state IN ('open', 'replaying')");
        }
        Some(state) => {
            q.push(" AND state = ").push_bind(state.to_owned());
        }
    }
    if let Some(id) = f.id {
        q.push(" AND id = ").push_bind(id);
    }
    if let Some(p) = f.portal {
        q.push(" AND portal_id = ").push_bind(p);
    }
    if let Some(t) = &f.object_type {
        q.push(" AND object_type = ").push_bind(t.clone());
    }
    if let Some(c) = f.reason_class {
        q.push(" AND reason_class = ").push_bind(c.as_str());
    }
    if let Some(s) = f.since {
        q.push(" AND created_at >= ").push_bind(s);
    }
    if let Some(u) = f.until {
        q.push(" AND created_at < ").push_bind(u);
    }
    if let Some(text) = &f.text {
        let like = format!(
            "%{}%",
            text.replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        );
        q.push(" AND (last_error ILIKE ").push_bind(like.clone());
        q.push(" OR reason ILIKE ").push_bind(like).push(")");
    }
    q.push(" ORDER BY id LIMIT ")
        .push_bind(f.limit.unwrap_or(100).clamp(1, 10_000));
    let rows = q.build().fetch_all(pool).await?;
    Ok(rows.iter().map(from_row).collect())
}

/// One dead letter.
pub async fn get(pool: &PgPool, id: DeadLetterId) -> Result<Option<DeadLetter>, sqlx::Error> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM dead_letters WHERE id = $1"
    )))
    .bind(id.0)
    .fetch_optional(pool)
    .await?;
    Ok(row.as_ref().map(from_row))
}
