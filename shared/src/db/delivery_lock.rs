//! Delivery locks: two workers never send the same conversion (or
//! adjustment) to impact.com at once, and no database transaction stays
//! open while impact.com answers.
//!
//! A delivery takes PostgreSQL session-level advisory locks on its rows'
//! ids, on a connection of its own, in id order (concurrent batches cannot
//! deadlock), waiting for another holder as a row lock would. It then reads
//! the rows (a committed state: the previous holder committed before it
//! let go), posts without a transaction, records the answers in a short
//! transaction, commits, and lets go. If the process dies, the connection
//! closes and the locks go with it, as a row lock's would. If the delivery
//! is dropped midway (a cancelled task), its connection is closed rather
//! than returned to the pool with the locks held.
//!
//! Keys: a conversion's id; an adjustment's id negated (ids are positive,
//! so the two never meet). No other code takes single-key advisory locks.

use sqlx::{PgConnection, PgPool, Postgres, pool::PoolConnection};

/// What is locked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rows {
    /// `conversions` ids.
    Conversions,
    /// `adjustments` ids.
    Adjustments,
}

/// Held locks on a connection of their own; [`DeliveryLock::release`]
/// lets go and returns the connection to the pool.
pub struct DeliveryLock {
    conn: Option<PoolConnection<Postgres>>,
}

impl DeliveryLock {
    /// Waits for and takes the locks of `ids` (any order, duplicates fine).
    pub async fn acquire(pool: &PgPool, rows: Rows, ids: &[i64]) -> Result<Self, sqlx::Error> {
        let mut keys: Vec<i64> = ids
            .iter()
            .map(|id| match rows {
                Rows::Conversions => *id,
                Rows::Adjustments => -*id,
            })
            .collect();
        keys.sort_unstable();
        keys.dedup();
        let mut held = Self {
            conn: Some(pool.acquire().await?),
        };
        sqlx::query("SELECT pg_advisory_lock(k) FROM unnest($1::bigint[]) WITH ORDINALITY AS t(k, n) ORDER BY n")
            .bind(&keys)
            .execute(held.conn())
            .await?;
        Ok(held)
    }

    /// The connection holding the locks (for the reads and the short
    /// transaction that records the outcome).
    pub fn conn(&mut self) -> &mut PgConnection {
        self.conn
            .as_deref_mut()
            .expect("the connection is held until release or drop")
    }

    /// Lets go of the locks (after the outcome is committed).
    pub async fn release(mut self) -> Result<(), sqlx::Error> {
        let Some(mut conn) = self.conn.take() else {
            return Ok(());
        };
        let unlocked = sqlx::query("SELECT pg_advisory_unlock_all()")
            .execute(&mut *conn)
            .await;
        if unlocked.is_err() {
            conn.close_on_drop();
        }
        unlocked.map(|_| ())
    }
}

impl Drop for DeliveryLock {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.as_mut() {
            // Not released (an error or a cancelled task): closing the
            // connection ends the session and its locks.
            conn.close_on_drop();
        }
    }
}
