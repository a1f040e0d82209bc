//! Delivering a recorded conversion to impact.com, at most once per key.
//!
//! The conversion row is locked (`FOR UPDATE`) from before the POST until
//! its outcome is committed, so two workers never post the same key at
//! once, and a delivered row is never posted again. If the process dies
//! after impact.com answered but before the commit, the lock is released
//! with the connection and the row is still `pending`: the redelivered
//! message posts it again with the same parameters and `OrderId`
//! (impact.com rejects the repeat as `CONV_DUPLICATE`), counted in
//! `worker_conversions_resumed_total`. No second row is ever created.

use domain::{events::PortalId, failure::Failure};
use shared::{db, impact::ImpactCredentials};

use crate::{Worker, pipeline::EventResult};

/// A stored portal's impact.com credentials, when it has them.
pub(crate) fn impact_credentials(p: &db::portals::StoredPortal) -> Option<ImpactCredentials> {
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
) -> Result<
    (
        Option<std::sync::Arc<db::portals::StoredPortal>>,
        Option<ImpactCredentials>,
    ),
    Failure,
> {
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
    if f.reason == "impact_auth"
        && let Err(e) =
            db::portals::set_credentials_status(&w.pool, portal, "failing", Some(&f.detail)).await
    {
        tracing::warn!(error = %e, "could not record credentials status");
    }
}

/// Posts conversion `id` unless it was delivered already.
pub async fn deliver(w: &Worker, portal: PortalId, id: i64) -> Result<EventResult, Failure> {
    // Within a message, deliveries go out in batches (same guarantees).
    if crate::deliver_batch::batched() {
        return w.deliveries.deliver(w, portal, id).await;
    }
    let (stored, creds) = crate::deliver::portal_credentials(w, portal).await?;

    let mut tx = w.pool.begin().await.map_err(Failure::database)?;
    let Some(row) = db::conversions::lock(&mut *tx, id)
        .await
        .map_err(Failure::database)?
    else {
        // The portal was deleted with its conversions meanwhile.
        return Ok(EventResult::Skipped("unknown_portal"));
    };
    if row.status == "delivered" {
        metrics::counter!("worker_conversions_total", "outcome" => "already_delivered")
            .increment(1);
        return Ok(EventResult::AlreadyDelivered { conversion_id: id });
    }
    let Some(creds) = creds else {
        let f = Failure::permanent(
            "portal_unconfigured",
            "the portal has no impact.com credentials",
        );
        db::conversions::mark_attempt_failed(&mut *tx, id, &f)
            .await
            .map_err(Failure::database)?;
        tx.commit().await.map_err(Failure::database)?;
        return Ok(EventResult::Failed(f));
    };

    // Short blips are retried in process (the row stays locked meanwhile).
    let submitted = w
        .retry
        .run("impact_submit", || async {
            w.impact
                .submit_conversion(&creds, &row.params)
                .await
                .map_err(|e| e.failure())
        })
        .await;
    match submitted {
        Ok(queued) => {
            db::conversions::mark_delivered(&mut *tx, id, queued.queued_uri.as_deref())
                .await
                .map_err(Failure::database)?;
            tx.commit().await.map_err(Failure::database)?;
            metrics::counter!("worker_conversions_total", "outcome" => "delivered").increment(1);
            // Written only when it changes (not once per conversion).
            let known_ok = stored
                .as_ref()
                .is_some_and(|p| p.credentials_status == "ok");
            if !known_ok
                && let Err(e) =
                    db::portals::set_credentials_status(&w.pool, portal, "ok", None).await
            {
                tracing::warn!(error = %e, "could not record credentials status");
            }
            tracing::info!(%portal, conversion = id, queued_uri = ?queued.queued_uri, "conversion delivered");
            Ok(EventResult::Delivered {
                conversion_id: id,
                queued_uri: queued.queued_uri,
            })
        }
        Err(f) => {
            db::conversions::mark_attempt_failed(&mut *tx, id, &f)
                .await
                .map_err(Failure::database)?;
            tx.commit().await.map_err(Failure::database)?;
            metrics::counter!("worker_conversions_total", "outcome" => f.reason).increment(1);
            flag_refused_credentials(w, portal, &f).await;
            tracing::warn!(%portal, conversion = id, class = f.class.as_str(), reason = f.reason, status = ?f.status, detail = f.loggable_detail(), "delivery failed");
            if f.is_transient() {
                Err(f)
            } else {
                Ok(EventResult::Failed(f))
            }
        }
    }
}
