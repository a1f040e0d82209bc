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
//! A conversion's lease is usually taken by the statement that records it
//! ([`NewLease`]: the row is created leased, no statement of its own): the
//! delivery that follows adopts it ([`Adopted`]) if it comes within a third
//! of the lease, and otherwise takes it again like any other (its own
//! token still counts as free).
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

impl LeaseTimes {
    /// Leases of `lease`, waiting for another holder at most a third of it.
    pub fn of(lease: Duration) -> Self {
        Self {
            lease,
            wait: lease / 3,
        }
    }
}

impl Default for LeaseTimes {
    fn default() -> Self {
        Self::of(Duration::from_secs(30))
    }
}

/// A lease that the statement recording a row takes on it when it creates
/// it (`lease_owner = token`, `lease_until = now + lease`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewLease {
    /// The token written on the rows.
    pub token: Uuid,
    /// How long it lasts.
    pub lease: Duration,
}

impl NewLease {
    /// A fresh token for `times.lease`.
    pub fn new(times: LeaseTimes) -> Self {
        Self {
            token: Uuid::new_v4(),
            lease: times.lease,
        }
    }

    /// The lease's length in milliseconds (the statements' parameter).
    pub fn millis(&self) -> f64 {
        millis(self.lease)
    }
}

/// A row created leased ([`NewLease`]) that a delivery may adopt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Adopted {
    /// The row.
    pub id: i64,
    /// The token written on it.
    pub token: Uuid,
    /// When the lease was taken (its statement committed at or after).
    pub since: tokio::time::Instant,
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
    /// Rows held (with the token written on each) and not yet cleared by a
    /// recording statement.
    held: Vec<(i64, Uuid)>,
    /// The ids of `held`, in id order.
    ids: Vec<i64>,
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
        Self::acquire_adopting(pool, rows, ids, &[], times).await
    }

    /// As [`Self::acquire`], adopting the leases of `adopted` rows taken
    /// within a third of the lease (no statement for them); the others'
    /// tokens count as free.
    pub async fn acquire_adopting(
        pool: &PgPool,
        rows: Rows,
        ids: &[i64],
        adopted: &[Adopted],
        times: LeaseTimes,
    ) -> Result<Self, LeaseError> {
        let token = Uuid::new_v4();
        let mut lease = Self {
            pool: pool.clone(),
            rows,
            held: Vec::with_capacity(ids.len() + adopted.len()),
            ids: Vec::new(),
            renewer: None,
        };
        let fresh = times.lease / 3;
        let mut stale_tokens = Vec::new();
        for a in adopted {
            if a.since.elapsed() < fresh {
                lease.held.push((a.id, a.token));
            } else {
                stale_tokens.push(a.token);
            }
        }
        let adopted_now: HashSet<i64> = lease.held.iter().map(|(id, _)| *id).collect();
        let mut wanted: Vec<i64> = ids
            .iter()
            .copied()
            .chain(adopted.iter().map(|a| a.id))
            .filter(|id| !adopted_now.contains(id))
            .collect();
        wanted.sort_unstable();
        wanted.dedup();
        stale_tokens.sort_unstable();
        stale_tokens.dedup();
        let started = tokio::time::Instant::now();
        let mut pause = Duration::from_millis(5);
        while !wanted.is_empty() {
            let (taken, busy) =
                take(pool, rows, (token, &stale_tokens), &wanted, times.lease).await?;
            lease.held.extend(taken.into_iter().map(|id| (id, token)));
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
        lease.held.dedup_by_key(|(id, _)| *id);
        lease.ids = lease.held.iter().map(|(id, _)| *id).collect();
        lease.renewer = Some(tokio::spawn(renew(
            pool.clone(),
            rows,
            lease.held.clone(),
            times.lease,
        )));
        Ok(lease)
    }

    /// The rows held, in id order.
    pub fn held(&self) -> &[i64] {
        &self.ids
    }

    /// Whether row `id` is held under `token` (an adopted lease still
    /// fresh, not taken again with this delivery's own token).
    pub fn holds_with(&self, id: i64, token: Uuid) -> bool {
        self.held
            .binary_search_by_key(&id, |(held, _)| *held)
            .is_ok_and(|i| self.held[i].1 == token)
    }

    /// `ids`' leases were cleared by the statement that recorded their
    /// answers: nothing left to release for them.
    pub fn settled(&mut self, ids: &[i64]) {
        let done: HashSet<i64> = ids.iter().copied().collect();
        self.held.retain(|(id, _)| !done.contains(id));
        self.ids.retain(|id| !done.contains(id));
    }

    /// Lets go of what is still held (no statement when nothing is).
    pub async fn release(mut self) -> Result<(), sqlx::Error> {
        self.stop_renewing();
        let held = std::mem::take(&mut self.held);
        clear(&self.pool, self.rows, &held).await
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
            let (pool, rows) = (self.pool.clone(), self.rows);
            let held = std::mem::take(&mut self.held);
            rt.spawn(async move {
                if let Err(e) = clear(&pool, rows, &held).await {
                    tracing::debug!(error = %e, "clearing dropped delivery leases failed; they expire");
                }
            });
        }
    }
}

/// One round: leases the free rows of `ids` (free: no lease, an expired
/// one, or one of `stale`, this delivery's own adopted tokens); the ids
/// taken, and those another delivery holds (rows that do not exist are in
/// neither).
async fn take(
    pool: &PgPool,
    rows: Rows,
    (token, stale): (Uuid, &[Uuid]),
    ids: &[i64],
    lease: Duration,
) -> Result<(Vec<i64>, Vec<i64>), sqlx::Error> {
    let table = rows.table();
    // `free` locks the free rows in id order, skipping those another taker
    // is locking this instant (they count as busy, asked for again).
    let sql = format!(
        "WITH free AS (
             SELECT id FROM {table}
             WHERE id = ANY($1)
               AND (lease_until IS NULL OR lease_until < clock_timestamp() OR lease_owner = ANY($4))
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
        .bind(stale)
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
async fn renew(pool: PgPool, rows: Rows, held: Vec<(i64, Uuid)>, lease: Duration) {
    if held.is_empty() {
        return;
    }
    let (ids, tokens): (Vec<i64>, Vec<Uuid>) = held.into_iter().unzip();
    let sql = format!(
        "UPDATE {} t SET lease_until = clock_timestamp() + $3 * interval '1 millisecond'
         FROM unnest($1::bigint[], $2::uuid[]) AS h(id, token)
         WHERE t.id = h.id AND t.lease_owner = h.token",
        rows.table()
    );
    let mut tick = tokio::time::interval(lease / 3);
    tick.tick().await;
    loop {
        tick.tick().await;
        let renewed = sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
            .bind(&ids)
            .bind(&tokens)
            .bind(millis(lease))
            .execute(&pool)
            .await;
        if let Err(e) = renewed {
            tracing::warn!(error = %e, "renewing delivery leases failed; trying again");
        }
    }
}

/// Clears the leases of `held` rows that still carry their token.
pub async fn clear(pool: &PgPool, rows: Rows, held: &[(i64, Uuid)]) -> Result<(), sqlx::Error> {
    if held.is_empty() {
        return Ok(());
    }
    let (ids, tokens): (Vec<i64>, Vec<Uuid>) = held.iter().copied().unzip();
    let sql = format!(
        "UPDATE {} t SET lease_owner = NULL, lease_until = NULL
         FROM unnest($1::bigint[], $2::uuid[]) AS h(id, token)
         WHERE t.id = h.id AND t.lease_owner = h.token",
        rows.table()
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(ids)
        .bind(tokens)
        .execute(pool)
        .await
        .map(|_| ())
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
