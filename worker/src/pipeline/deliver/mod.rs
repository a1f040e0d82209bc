//! Delivering recorded conversions to impact.com, at most once per key: one
//! implementation, for batches of any size (a replay's or a backfill's
//! conversion is a batch of one).
//!
//! A batch's rows are leased (`shared::db::delivery_lease`: a token and an
//! expiry on the rows, renewed while held; no transaction and no
//! connection held while impact.com answers) from before the POSTs until
//! their outcomes are committed, so two workers never post the same key at
//! once, and a delivered row is never posted again. If the process dies
//! after impact.com answered but before the commit, the rows are still
//! `pending` and their leases expire: the redelivered message posts them
//! again with the same parameters and `OrderId` (impact.com rejects the
//! repeat as `CONV_DUPLICATE`), counted in
//! `worker_conversions_resumed_total`. No second row is ever created.
//!
//! Live traffic shares batches per portal across the worker's messages
//! ([`Batching::Shared`]): the lease and update statements cost PostgreSQL
//! per statement as much as per row. Batching adds no wait: a delivery arriving while fewer than
//! [`MAX_FLUSHING`] batches of its portal are being posted starts one at
//! once; deliveries that arrive meanwhile form the next batch. Portals never
//! wait on each other's batches.

pub mod batches;

use std::sync::Arc;

use domain::{
    events::PortalId,
    failure::{Failure, FailureReason},
    status::{CredentialsStatus, DeliveryStatus},
};
use futures::StreamExt;
use shared::{
    db::{
        self,
        conversions::{ConversionRow, Delivered},
        delivery_lease::{Adopted, DeliveryLease, LeaseError, Rows},
        portals::StoredPortal,
    },
    impact::ImpactCredentials,
};
use sqlx::PgConnection;

use crate::{
    Worker,
    pipeline::{batching::Batching, result::EventResult},
};

pub use batches::{Claim, DeliveryBatches, MAX_FLUSHING, Results};

/// Delivers the claimed conversion of `portal`, with the portal's next
/// shared batch or alone, adopting the lease its recording took.
pub async fn deliver(
    w: &Worker,
    batching: Batching,
    portal: PortalId,
    claim: Claim,
) -> Result<EventResult, Failure> {
    let id = claim.id;
    match batching {
        Batching::Shared => {
            let w2 = w.clone();
            let flush = move |claims| flush(w2.clone(), portal, claims);
            w.deliveries.deliver(portal, claim, flush).await
        }
        Batching::Alone => {
            // Boxed: a batch's future is large, and live traffic (the
            // shared batches, flushed on tasks of their own) never takes
            // this path; inline, every event's future would carry it.
            let mut results = Box::pin(deliver_batch(w, portal, vec![claim], How::Deliver)).await?;
            results
                .remove(&id)
                .unwrap_or(Ok(EventResult::AlreadyDelivered { conversion_id: id }))
        }
    }
}

/// Sends recorded conversion `id` again for a replay: with `params` (the
/// stored payload of `--as-sent`) or the row's own, and even when it was
/// delivered already if `force`. The same batch of one as [`deliver`]; a
/// refusal of a delivered row leaves it delivered.
pub async fn resend(
    w: &Worker,
    portal: PortalId,
    id: i64,
    params: Option<&[(String, String)]>,
    force: bool,
) -> Result<Sent, Failure> {
    let how = How::Resend { params, force };
    let claim = Claim {
        id,
        adopted: None,
        created_with: None,
    };
    let mut results = deliver_batch(w, portal, vec![claim], how).await?;
    Ok(match results.remove(&id) {
        Some(Ok(EventResult::Delivered { .. })) => Sent::Delivered,
        Some(Ok(EventResult::AlreadyDelivered { .. })) => Sent::AlreadyDelivered,
        Some(Ok(EventResult::Failed(f)) | Err(f)) => Sent::Failed(f),
        _ => Sent::Failed(Failure::permanent(
            FailureReason::ConversionMissing,
            format!("conversion {id} no longer exists"),
        )),
    })
}

/// What a delivery batch does with its rows.
#[derive(Debug, Clone, Copy)]
enum How<'a> {
    /// Posts each row not delivered yet (live traffic, replay, backfill).
    Deliver,
    /// A replay's send: `params` instead of the row's when given, a
    /// delivered row too when `force`; impact.com's failures are answered
    /// as such, transient or not (the replay reports them).
    Resend {
        params: Option<&'a [(String, String)]>,
        force: bool,
    },
}

impl How<'_> {
    fn force(self) -> bool {
        matches!(self, Self::Resend { force: true, .. })
    }

    fn metric(self) -> &'static str {
        match self {
            Self::Deliver => "delivered",
            Self::Resend { .. } => "replayed",
        }
    }
}

/// A stored portal's impact.com credentials, when it has them.
pub(crate) fn impact_credentials(p: &StoredPortal) -> Option<ImpactCredentials> {
    Some(ImpactCredentials {
        account_sid: p.config.as_ref()?.impact_account_sid.clone(),
        auth_token: p.impact_auth_token.clone()?,
    })
}

/// The portal as stored (cached) and its impact.com credentials, when it
/// has them: what every delivery path reads first.
pub(crate) async fn portal_credentials(
    w: &Worker,
    portal: PortalId,
) -> Result<(Option<Arc<StoredPortal>>, Option<ImpactCredentials>), Failure> {
    let stored = w
        .portals
        .get(&w.pool, &w.cipher, portal)
        .await
        .map_err(Failure::database)?;
    let creds = stored.as_deref().and_then(impact_credentials);
    Ok((stored, creds))
}

/// After impact.com refused the portal's credentials (`impact_auth`), flags
/// them as failing for the owner (best effort: the failure itself is
/// recorded with the delivery).
pub(crate) async fn flag_refused_credentials(w: &Worker, portal: PortalId, f: &Failure) {
    if f.reason == FailureReason::ImpactAuth {
        set_credentials(w, portal, CredentialsStatus::Failing, Some(&f.detail)).await;
    }
}

async fn set_credentials(
    w: &Worker,
    portal: PortalId,
    status: CredentialsStatus,
    detail: Option<&str>,
) {
    if let Err(e) = db::portals::set_credentials(&w.pool, portal, status, detail).await {
        tracing::warn!(error = %e, "could not record credentials status");
    }
}

/// What a send of a recorded conversion or adjustment did (replays and
/// adjustments).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    /// impact.com queued it.
    Delivered,
    /// Delivered before and not forced: nothing sent.
    AlreadyDelivered,
    /// Refused or failed.
    Failed(Failure),
}

/// Delivers one coalesced batch of the worker's deliveries (the flush of
/// [`DeliveryBatches`]).
async fn flush(w: Worker, portal: PortalId, claims: Vec<Claim>) -> Results {
    let ids: Vec<i64> = claims.iter().map(|c| c.id).collect();
    match deliver_batch(&w, portal, claims, How::Deliver).await {
        Ok(r) => r,
        Err(f) => ids.into_iter().map(|id| (id, Err(f.clone()))).collect(),
    }
}

/// Lease `ids`, post those not delivered yet (no transaction open), record
/// their outcomes in one short transaction, commit, let go. A row that no longer exists (its portal was deleted
/// meanwhile) is `Skipped("unknown_portal")`.
async fn deliver_batch(
    w: &Worker,
    portal: PortalId,
    mut claims: Vec<Claim>,
    how: How<'_>,
) -> Result<Results, Failure> {
    let (stored, creds) = portal_credentials(w, portal).await?;
    let ids: Vec<i64> = claims.iter().map(|c| c.id).collect();
    let adopted: Vec<Adopted> = claims.iter().filter_map(|c| c.adopted).collect();
    let mut unique = ids.clone();
    unique.sort_unstable();
    unique.dedup();
    let unconfigured = Failure::permanent(
        FailureReason::PortalUnconfigured,
        "the portal has no impact.com credentials",
    );
    if creds.is_none() && matches!(how, How::Resend { .. }) {
        // A replay's send changes nothing without credentials.
        let failed = |id: &i64| (*id, Ok(EventResult::Failed(unconfigured.clone())));
        return Ok(unique.iter().map(failed).collect());
    }
    let mut out: Results = unique
        .iter()
        .map(|id| (*id, Ok(EventResult::Skipped("unknown_portal"))))
        .collect();
    let unleased: Vec<i64> = claims
        .iter()
        .filter(|c| c.adopted.is_none())
        .map(|c| c.id)
        .collect();
    let mut held = lease(w, Rows::Conversions, &unleased, &adopted).await?;
    let to_post = read_pending(&w.pool, &mut claims, &held, how, &mut out).await?;
    let Some(creds) = creds else {
        let f = unconfigured;
        let mut attempts = Vec::with_capacity(to_post.len());
        let mut tx = w.pool.begin().await.map_err(Failure::database)?;
        for row in &to_post {
            db::conversions::mark_attempt_failed(&mut *tx, row.id, &f)
                .await
                .map_err(Failure::database)?;
            out.insert(row.id, Ok(EventResult::Failed(f.clone())));
            attempts.push(attempt(row.id, false, 0, Err(&f)));
        }
        db::conversions::record_attempts(&mut *tx, &attempts)
            .await
            .map_err(Failure::database)?;
        tx.commit().await.map_err(Failure::database)?;
        held.settled(&attempts.iter().map(|a| a.conversion_id).collect::<Vec<_>>());
        held.release().await.map_err(Failure::database)?;
        return Ok(out);
    };
    // No transaction is open while impact.com answers, and no connection
    // is held: the leases keep other deliveries off these rows.
    let answers = post_all(w, &creds, to_post, how).await;
    let answered: Vec<i64> = answers
        .iter()
        .filter(|a| a.answer.is_ok() || !a.delivered_before)
        .map(|a| a.id)
        .collect();
    // Usually every conversion was queued at its first attempt: then the
    // answers are one UPDATE, atomic on its own, without a transaction to
    // open and commit (two round trips fewer per batch).
    let (delivered, auth_failure) = if answers.iter().all(Answer::queued_at_once) {
        let mut conn = w.pool.acquire().await.map_err(Failure::database)?;
        record_answers(&mut conn, portal, answers, how, &mut out).await?
    } else {
        let mut tx = w.pool.begin().await.map_err(Failure::database)?;
        let recorded = record_answers(&mut tx, portal, answers, how, &mut out).await?;
        tx.commit().await.map_err(Failure::database)?;
        recorded
    };
    // The statements that recorded the answers cleared those rows' leases.
    held.settled(&answered);
    held.release().await.map_err(Failure::database)?;
    metrics::counter!("worker_conversions_total", "outcome" => how.metric())
        .increment(delivered.len() as u64);
    let known_ok = stored
        .as_ref()
        .is_some_and(|p| p.credentials() == Some(CredentialsStatus::Ok));
    match (&auth_failure, delivered.is_empty()) {
        (Some(detail), _) => {
            set_credentials(w, portal, CredentialsStatus::Failing, Some(detail)).await;
        }
        // Written only when it changes (not once per batch).
        (None, false) if !known_ok => set_credentials(w, portal, CredentialsStatus::Ok, None).await,
        _ => {}
    }
    tracing::debug!(%portal, delivered = delivered.len(), "conversions delivered");
    Ok(out)
}

/// Lets go of a lease a recording took on a row that this event will not
/// deliver (best effort: otherwise it runs out).
pub(crate) async fn let_go(w: &Worker, a: Adopted) {
    let held = [(a.id, a.token)];
    if let Err(e) = shared::db::delivery_lease::clear(&w.pool, Rows::Conversions, &held).await {
        tracing::debug!(error = %e, conversion = a.id, "clearing a delivery lease failed; it runs out");
    }
}

/// Leases `ids` for this delivery (adopting `adopted`); rows another worker is delivering for
/// longer than the wait are a transient failure (the message is retried).
pub(crate) async fn lease(
    w: &Worker,
    rows: Rows,
    ids: &[i64],
    adopted: &[Adopted],
) -> Result<DeliveryLease, Failure> {
    DeliveryLease::acquire_adopting(&w.pool, rows, ids, adopted, w.delivery_lease)
        .await
        .map_err(|e| match e {
            LeaseError::Database(e) => Failure::database(e),
            busy @ LeaseError::Busy(_) => {
                Failure::transient(FailureReason::DeliveryBusy, busy.to_string())
            }
        })
}

/// The leased rows to post. A row this worker created moments ago, still
/// under the lease its creation wrote, is posted with the parameters it
/// was created with. The only writers of a pending row's parameters are
/// the recording of a later event of the same key and an erasure (which
/// takes no delivery lease); reading the row here, a few milliseconds after
/// its creation, would not close either race. The other rows are read;
/// those delivered already are answered in `out` (unless the send is
/// forced), the others returned to be posted.
async fn read_pending(
    pool: &sqlx::PgPool,
    claims: &mut [Claim],
    held: &DeliveryLease,
    how: How<'_>,
    out: &mut Results,
) -> Result<Vec<ConversionRow>, Failure> {
    let mut to_post = Vec::with_capacity(held.held().len());
    let mut to_read = Vec::new();
    let mut known: std::collections::HashMap<i64, Vec<(String, String)>> = claims
        .iter_mut()
        .filter_map(|c| {
            let adopted = c.adopted.filter(|a| held.holds_with(a.id, a.token))?;
            Some((adopted.id, c.created_with.take()?))
        })
        .collect();
    for id in held.held() {
        match known.remove(id) {
            Some(params) if matches!(how, How::Deliver) => to_post.push(ConversionRow {
                id: *id,
                status: DeliveryStatus::Pending,
                params,
                attempts: 0,
                created: true,
            }),
            _ => to_read.push(*id),
        }
    }
    let rows = if to_read.is_empty() {
        Vec::new()
    } else {
        db::conversions::read_many(pool, &to_read)
            .await
            .map_err(Failure::database)?
    };
    for row in rows {
        if row.status == DeliveryStatus::Delivered && !how.force() {
            metrics::counter!("worker_conversions_total", "outcome" => "already_delivered")
                .increment(1);
            let done = EventResult::AlreadyDelivered {
                conversion_id: row.id,
            };
            out.insert(row.id, Ok(done));
        } else {
            to_post.push(row);
        }
    }
    to_post.sort_unstable_by_key(|row| row.id);
    Ok(to_post)
}

/// impact.com's answer to one conversion.
struct Answer {
    /// The conversion.
    id: i64,
    /// It was delivered before (a replay's resend).
    delivered_before: bool,
    /// No attempt before this one.
    first: bool,
    /// What impact.com answered.
    answer: Result<shared::impact::Queued, Failure>,
    /// How long the answer took, in-process retries included (ms).
    ms: i32,
}

impl Answer {
    /// Queued on the conversion's first attempt: the attempt is kept in
    /// the conversion's own row (`first_attempt_at`, `first_attempt_ms`),
    /// not as a `delivery_attempts` row.
    fn queued_at_once(&self) -> bool {
        self.first && !self.delivered_before && self.answer.is_ok()
    }
}

/// One attempt as the conversion page shows it (`delivery_attempts`).
fn attempt(
    id: i64,
    resend: bool,
    duration_ms: i32,
    answer: Result<&shared::impact::Queued, &Failure>,
) -> db::conversions::Attempt {
    let (http_status, result, error) = match answer {
        Ok(_) => (Some(200), "queued", None),
        Err(f) => (f.status, f.reason.as_str(), Some(f.detail.clone())),
    };
    db::conversions::Attempt {
        conversion_id: id,
        http_status,
        duration_ms,
        result,
        error,
        resend,
    }
}

/// Posts the rows concurrently (over the HTTP client's kept-alive
/// connections); short blips are retried in process, the rows staying leased.
async fn post_all(
    w: &Worker,
    creds: &ImpactCredentials,
    rows: Vec<ConversionRow>,
    how: How<'_>,
) -> Vec<Answer> {
    futures::stream::iter(rows)
        .map(|row| async move {
            let params = match how {
                How::Resend {
                    params: Some(p), ..
                } => p,
                _ => row.params.as_slice(),
            };
            let started = std::time::Instant::now();
            let answer = w
                .retry
                .run("impact_submit", || async {
                    w.impact
                        .submit_conversion(creds, params)
                        .await
                        .map_err(|e| e.failure())
                })
                .await;
            let delivered_before = row.status == DeliveryStatus::Delivered;
            let ms = i32::try_from(started.elapsed().as_millis()).unwrap_or(i32::MAX);
            Answer {
                id: row.id,
                delivered_before,
                first: row.attempts == 0,
                answer,
                ms,
            }
        })
        .buffer_unordered(w.delivery_concurrency)
        .collect()
        .await
}

/// Records the attempts (but those queued at once, which the delivered
/// rows keep: [`Answer::queued_at_once`]), marks the delivered rows in one
/// statement, and answers `out`; the delivered rows and the detail of a
/// refusal of the credentials.
async fn record_answers(
    tx: &mut PgConnection,
    portal: PortalId,
    answers: Vec<Answer>,
    how: How<'_>,
    out: &mut Results,
) -> Result<(Vec<Delivered>, Option<String>), Failure> {
    let mut delivered = Vec::new();
    let mut auth_failure = None;
    let attempts: Vec<_> = answers
        .iter()
        .filter(|a| !a.queued_at_once())
        .map(|a| attempt(a.id, a.delivered_before, a.ms, a.answer.as_ref()))
        .collect();
    db::conversions::record_attempts(&mut *tx, &attempts)
        .await
        .map_err(Failure::database)?;
    for a in answers {
        let first_ms = a.queued_at_once().then_some(a.ms);
        let Answer {
            id,
            delivered_before,
            answer,
            ..
        } = a;
        match answer {
            Ok(queued) => {
                let done = EventResult::Delivered {
                    conversion_id: id,
                    queued_uri: queued.queued_uri.clone(),
                };
                out.insert(id, Ok(done));
                delivered.push(Delivered {
                    id,
                    queued_uri: queued.queued_uri,
                    first_attempt_ms: first_ms,
                });
            }
            Err(f) => {
                // A failed resend of a delivered conversion leaves it delivered.
                if !delivered_before {
                    db::conversions::mark_attempt_failed(&mut *tx, id, &f)
                        .await
                        .map_err(Failure::database)?;
                }
                metrics::counter!("worker_conversions_total", "outcome" => f.reason.as_str())
                    .increment(1);
                tracing::warn!(%portal, conversion = id, class = f.class.as_str(), reason = f.reason.as_str(), status = ?f.status, detail = f.loggable_detail(), "delivery failed");
                if f.reason == FailureReason::ImpactAuth {
                    auth_failure = Some(f.detail.clone());
                }
                let r = if f.is_transient() && matches!(how, How::Deliver) {
                    Err(f)
                } else {
                    Ok(EventResult::Failed(f))
                };
                out.insert(id, r);
            }
        }
    }
    db::conversions::mark_delivered_many(&mut *tx, &delivered)
        .await
        .map_err(Failure::database)?;
    Ok((delivered, auth_failure))
}
