//! Sending one recorded adjustment to impact.com (`DELETE` or `PUT`
//! `/Actions`). As with conversions, the row is leased
//! (`shared::db::delivery_lease`, no transaction open during the request)
//! from before the request until its outcome is committed, so two workers (or a worker and
//! a replay) never send the same adjustment at once, and a delivered one is
//! sent again only when an operator forces it.

use domain::{
    events::{HubSpotEvent, PortalId},
    failure::{Failure, FailureReason},
    object_type::ObjectType,
    status::DeliveryStatus,
};
use shared::db::{
    self,
    delivery_lease::{DeliveryLease, Rows},
};

use crate::{
    Worker,
    pipeline::{
        dead_letter,
        deliver::{Sent, flag_refused_credentials, lease, portal_credentials},
    },
};

/// Sends adjustment `id` unless it was delivered (and not `force`d).
/// `Err` is a transient failure: the row stays `pending` for the retry.
pub async fn deliver(w: &Worker, portal: PortalId, id: i64, force: bool) -> Result<Sent, Failure> {
    let (_, creds) = portal_credentials(w, portal).await?;
    let mut held = lease(w, Rows::Adjustments, &[id], &[]).await?;
    let Some(row) = db::adjustments::read(&w.pool, id)
        .await
        .map_err(Failure::database)?
    else {
        held.release().await.map_err(Failure::database)?;
        return Ok(Sent::Failed(Failure::permanent(
            FailureReason::AdjustmentMissing,
            format!("adjustment {id} no longer exists"),
        )));
    };
    let delivered = row.delivery_status() == Some(DeliveryStatus::Delivered);
    if delivered && !force {
        held.release().await.map_err(Failure::database)?;
        return Ok(Sent::AlreadyDelivered);
    }
    let Some(creds) = creds else {
        return unconfigured(w, held, id).await;
    };
    let reversal = row.kind == "reversal";
    // Short blips are retried in process (the row stays leased meanwhile;
    // no transaction is open).
    let result = w
        .retry
        .run("impact_adjust", || async {
            w.impact
                .adjust_action(&creds, reversal, &row.form)
                .await
                .map_err(|e| e.failure())
        })
        .await;
    let kind = if reversal { "reversal" } else { "modification" };
    match result {
        Ok(queued) => {
            db::adjustments::mark_delivered(&w.pool, id, queued.queued_uri.as_deref())
                .await
                .map_err(Failure::database)?;
            held.settled(&[id]);
            held.release().await.map_err(Failure::database)?;
            metrics::counter!("worker_adjustments_total", "kind" => kind, "outcome" => "delivered")
                .increment(1);
            tracing::info!(%portal, adjustment = id, conversion = row.conversion_id, kind,
                queued_uri = ?queued.queued_uri, "adjustment delivered");
            Ok(Sent::Delivered)
        }
        Err(f) => {
            // A failed resend of a delivered adjustment leaves it delivered.
            if !delivered {
                db::adjustments::mark_attempt_failed(
                    &w.pool,
                    id,
                    !f.is_transient(),
                    f.reason.as_str(),
                    &f.detail,
                )
                .await
                .map_err(Failure::database)?;
                held.settled(&[id]);
            }
            held.release().await.map_err(Failure::database)?;
            metrics::counter!("worker_adjustments_total", "kind" => kind, "outcome" => f.reason.as_str())
                .increment(1);
            flag_refused_credentials(w, portal, &f).await;
            tracing::warn!(%portal, adjustment = id, kind, class = f.class.as_str(),
                reason = f.reason.as_str(), status = ?f.status, detail = f.loggable_detail(), "adjustment failed");
            if f.is_transient() {
                Err(f)
            } else {
                Ok(Sent::Failed(f))
            }
        }
    }
}

/// No impact.com credentials: the adjustment fails for good.
async fn unconfigured(w: &Worker, mut held: DeliveryLease, id: i64) -> Result<Sent, Failure> {
    let f = Failure::permanent(
        FailureReason::PortalUnconfigured,
        "the portal has no impact.com credentials",
    );
    db::adjustments::mark_attempt_failed(&w.pool, id, true, f.reason.as_str(), &f.detail)
        .await
        .map_err(Failure::database)?;
    held.settled(&[id]);
    held.release().await.map_err(Failure::database)?;
    Ok(Sent::Failed(f))
}

/// A refused adjustment goes to the dead-letter store with its form; the
/// replay resends it.
pub(super) async fn dead_letter(
    w: &Worker,
    event: &HubSpotEvent,
    ty: ObjectType,
    row: &db::adjustments::AdjustmentRow,
    f: &Failure,
) -> Result<(), Failure> {
    let letter = db::dead_letters::NewDeadLetter {
        portal_id: Some(row.portal_id),
        object_type: Some(ty.as_str().to_owned()),
        object_id: Some(row.object_id),
        reason_class: Some(db::dead_letters::ReasonClass::Permanent),
        reason: f.reason.to_string(),
        last_status: f.status,
        last_error: Some(domain::failure::truncate(&f.detail, 4000)),
        attempts: row.attempts + 1,
        events: serde_json::json!([event]),
        event_key: Some(format!("adjustment:{}", row.id)),
        fetched_object: None,
        payload: serde_json::to_value(&row.form).ok(),
        conversion_id: None,
        adjustment_id: Some(row.id),
    };
    dead_letter::store(w, &letter).await
}
