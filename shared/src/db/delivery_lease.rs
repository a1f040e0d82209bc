//! Delivery leases: two workers never send the same conversion (or
//! adjustment) to impact.com at once, no database transaction stays open
//! while impact.com answers, and nothing depends on a database session — so
//! workers may reach PostgreSQL through a transaction-mode pooler
//! (PgBouncer).
//!
//! A delivery leases its rows before posting: one statement sets
//! `lease_owner` (a token of this delivery) and `lease_until` on the rows
//! whose lease is free or expired, taking their row locks in id order with
//! `SKIP LOCKED` (concurrent takers cannot deadlock). Rows another delivery
//! holds are asked for again, with a growing pause, until they are free or
//! [`LeaseTimes::wait`] has passed ([`LeaseError::Busy`]: the caller retries
//! the message later). While a lease is held a task renews it every third
//! of [`LeaseTimes::lease`], so it never expires under a live holder, however
//! slow impact.com is. The statement that records a row's answer
//! (delivered, failed) clears its lease in the same row version; what is
//! left is cleared by [`DeliveryLease::release`].
//!
//! If the process dies, its leases expire after [`LeaseTimes::lease`] (30 s
//! by default): the message's retry then takes them over. If a delivery is
//! dropped midway (a cancelled task), its leases are cleared by a task of
//! their own.

use std::{collections::HashSet, time::Duration};

use sqlx::PgPool;
use tokio::task::JoinHandle;
use uuid::Uuid;

/// What is leased.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rows {
    /// `conversions` rows.
    Conversions,
    /// `adjustments` rows.
    Adjustments,
}

impl Rows {
    fn table(self) -> &'static str {
        match self {
            Self::Conversions => "conversions",
            Self::Adjustments => "adjustments",
        }
    }
}

/// How long a lease lasts without renewal, and how long to wait for
/// another holder's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseTimes {
    /// A lease's length; renewed every third of it while held.
    pub lease: Duration,
    /// Longest wait for rows another delivery holds.
    pub wait: Duration,
}

impl Default for LeaseTimes {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(30),
            wait: Duration::from_secs(10),
        }
    }
}

/// Why rows could not be leased.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// PostgreSQL refused or was unreachable.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// Another delivery held these rows for longer than the wait.
    #[error("{} row(s) are being delivered by another worker", .0.len())]
    Busy(Vec<i64>),
}

/// Leases held by one delivery; [`DeliveryLease::release`] lets go.
pub struct DeliveryLease {
    pool: PgPool,
    rows: Rows,
    token: Uuid,
    /// Rows held and not yet cleared by a recording statement.
    held: Vec<i64>,
    renewer: Option<JoinHandle<()>>,
}

impl DeliveryLease {
    /// Waits for and takes the leases of `ids` (any order, duplicates
    /// fine). Rows that do not exist are left out: [`Self::held`] says
    /// which are held.
    pub async fn acquire(
        pool: &PgPool,
        rows: Rows,
        ids: &[i64],
        times: LeaseTimes,
    ) -> Result<Self, LeaseError> {
        let token = Uuid::new_v4();
        let mut wanted: Vec<i64> = ids.to_vec();
        wanted.sort_unstable();
        wanted.dedup();
        let mut lease = Self {
            pool: pool.clone(),
            rows,
            token,
            held: Vec::with_capacity(wanted.len()),
            renewer: None,
        };
        let started = tokio::time::Instant::now();
        let mut pause = Duration::from_millis(5);
        loop {
            let (taken, busy) = take(pool, rows, token, &wanted, times.lease).await?;
            lease.held.extend(taken);
            if busy.is_empty() {
                break;
            }
            let waited = started.elapsed();
            if waited >= times.wait {
                lease.release().await?;
                return Err(LeaseError::Busy(busy));
            }
            tokio::time::sleep(pause.min(times.wait - waited)).await;
            pause = (pause * 2).min(Duration::from_millis(250));
            wanted = busy;
        }
        lease.held.sort_unstable();
        lease.renewer = Some(tokio::spawn(renew(
            pool.clone(),
            rows,
            token,
            lease.held.clone(),
            times.lease,
        )));
        Ok(lease)
    }

    /// The rows held, in id order.
    pub fn held(&self) -> &[i64] {
        &self.held
    }

    /// The lease's token: statements that record an answer clear the lease
    /// of the rows they write.
    pub fn token(&self) -> Uuid {
        self.token
    }

    /// `ids`' leases were cleared by the statement that recorded their
    /// answers: nothing left to release for them.
    pub fn settled(&mut self, ids: &[i64]) {
        let done: HashSet<i64> = ids.iter().copied().collect();
        self.held.retain(|id| !done.contains(id));
    }

    /// Lets go of what is still held (no statement when nothing is).
    pub async fn release(mut self) -> Result<(), sqlx::Error> {
        self.stop_renewing();
        let held = std::mem::take(&mut self.held);
        clear(&self.pool, self.rows, self.token, &held).await
    }

    fn stop_renewing(&mut self) {
        if let Some(task) = self.renewer.take() {
            task.abort();
        }
    }
}

impl Drop for DeliveryLease {
    fn drop(&mut self) {
        self.stop_renewing();
        if self.held.is_empty() {
            return;
        }
        // Not released (an error or a cancelled task): clear the leases
        // now rather than let them expire.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let (pool, rows, token) = (self.pool.clone(), self.rows, self.token);
            let held = std::mem::take(&mut self.held);
            rt.spawn(async move {
                if let Err(e) = clear(&pool, rows, token, &held).await {
                    tracing::debug!(error = %e, "clearing dropped delivery leases failed; they expire");
                }
            });
        }
    }
}

/// One round: leases the free rows of `ids`; the ids taken, and those
/// another delivery holds (rows that do not exist are in neither).
async fn take(
    pool: &PgPool,
    rows: Rows,
    token: Uuid,
    ids: &[i64],
    lease: Duration,
) -> Result<(Vec<i64>, Vec<i64>), sqlx::Error> {
    let table = rows.table();
    // `free` locks the free rows in id order, skipping those another taker
    // is locking this instant (they count as busy, asked for again).
    let sql = format!(
        "WITH free AS (
             SELECT id FROM {table}
             WHERE id = ANY($1) AND (lease_until IS NULL OR lease_until < clock_timestamp())
             ORDER BY id FOR UPDATE SKIP LOCKED
         ), taken AS (
             UPDATE {table} t SET lease_owner = $2,
                 lease_until = clock_timestamp() + $3 * interval '1 millisecond'
             FROM free WHERE t.id = free.id
             RETURNING t.id
         )
         SELECT coalesce((SELECT array_agg(id) FROM taken), '{{}}') AS taken,
                coalesce((SELECT array_agg(id) FROM {table} WHERE id = ANY($1)), '{{}}') AS existing"
    );
    let (taken, existing): (Vec<i64>, Vec<i64>) = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(ids)
        .bind(token)
        .bind(millis(lease))
        .fetch_one(pool)
        .await?;
    let got: HashSet<i64> = taken.iter().copied().collect();
    let busy = existing
        .into_iter()
        .filter(|id| !got.contains(id))
        .collect();
    Ok((taken, busy))
}

/// Renews the leases every third of their length until aborted.
async fn renew(pool: PgPool, rows: Rows, token: Uuid, ids: Vec<i64>, lease: Duration) {
    if ids.is_empty() {
        return;
    }
    let sql = format!(
        "UPDATE {} SET lease_until = clock_timestamp() + $3 * interval '1 millisecond'
         WHERE id = ANY($1) AND lease_owner = $2",
        rows.table()
    );
    let mut tick = tokio::time::interval(lease / 3);
    tick.tick().await;
    loop {
        tick.tick().await;
        let renewed = sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
            .bind(&ids)
            .bind(token)
            .bind(millis(lease))
            .execute(&pool)
            .await;
        if let Err(e) = renewed {
            tracing::warn!(error = %e, "renewing delivery leases failed; trying again");
        }
    }
}

/// Clears the leases of `ids` this token still holds.
async fn clear(pool: &PgPool, rows: Rows, token: Uuid, ids: &[i64]) -> Result<(), sqlx::Error> {
    if ids.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "UPDATE {} SET lease_owner = NULL, lease_until = NULL WHERE id = ANY($1) AND lease_owner = $2",
        rows.table()
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(ids)
        .bind(token)
        .execute(pool)
        .await
        .map(|_| ())
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
