//! `hubspot_rate_windows`: the rolling request windows of HubSpot accounts,
//! shared by every process on the database (the functions
//! `hubspot_rate_reserve` and `hubspot_rate_answered` of migration 000007
//! do the bookkeeping atomically).

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use sqlx::PgPool;

/// The window key of the account whose access token is `token` (the first
/// 16 bytes of its SHA-256): `hubspot_rate_windows.account`.
pub fn account_key(token: &str) -> [u8; 16] {
    let digest = Sha256::digest(token.as_bytes());
    let mut k = [0u8; 16];
    k.copy_from_slice(&digest[..16]);
    k
}

/// One account's window as this process knows it.
#[derive(Debug, Clone, Copy)]
pub struct Window<'a> {
    /// The account key (a hash of its access token).
    pub account: &'a [u8; 16],
    /// Requests allowed per interval.
    pub capacity: i32,
    /// The interval, in milliseconds.
    pub interval_ms: i64,
}

/// The slot a reservation got.
#[derive(Debug, Clone, Copy)]
pub struct Reservation {
    /// When the request may be sent; `None` when the account is paused.
    pub at: Option<DateTime<Utc>>,
    /// The database's clock when it answered.
    pub now: DateTime<Utc>,
    /// Until when the account is paused, if it is.
    pub paused_until: Option<DateTime<Utc>>,
}

/// HubSpot's answer to a request sent in a reserved slot.
#[derive(Debug, Clone, Copy)]
pub struct Answer {
    /// The slot the request was sent in.
    pub reserved: DateTime<Utc>,
    /// `X-HubSpot-RateLimit-Max`, when sent.
    pub max: Option<i32>,
    /// `X-HubSpot-RateLimit-Remaining`, when sent.
    pub remaining: Option<i32>,
    /// Whether HubSpot answered 429.
    pub limited: bool,
    /// How long a 429's policy asks to pause, in milliseconds.
    pub pause_ms: Option<i64>,
}

/// Reserves the next slot of `window` that fits, waiting at most
/// `longest_ms` (a later slot answers as paused).
pub async fn reserve(
    pool: &PgPool,
    window: &Window<'_>,
    longest_ms: i64,
) -> Result<Reservation, sqlx::Error> {
    let (at, now, paused_until) = sqlx::query_as(
        "SELECT at, now, paused_until FROM hubspot_rate_reserve(\
         $1, $2, $3 * interval '1 millisecond', $4 * interval '1 millisecond')",
    )
    .bind(&window.account[..])
    .bind(window.capacity)
    .bind(window.interval_ms)
    .bind(longest_ms)
    .fetch_one(pool)
    .await?;
    Ok(Reservation {
        at,
        now,
        paused_until,
    })
}

/// Books HubSpot's answer: the slot moves to now, the learned limit and
/// what is left are stored, and a 429 pauses the account.
pub async fn answered(
    pool: &PgPool,
    window: &Window<'_>,
    answer: &Answer,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "SELECT hubspot_rate_answered($1, $2, $3, \
         $4 * interval '1 millisecond', $5, $6, $7, $8 * interval '1 millisecond')",
    )
    .bind(&window.account[..])
    .bind(answer.reserved)
    .bind(window.capacity)
    .bind(window.interval_ms)
    .bind(answer.max)
    .bind(answer.remaining)
    .bind(answer.limited)
    .bind(answer.pause_ms)
    .execute(pool)
    .await
    .map(drop)
}
