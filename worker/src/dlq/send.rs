//! Sending a recorded conversion for a replay: `--as-sent` (the stored
//! payload) and `--force` (even when delivered). The row is locked from
//! before the POST until its outcome is committed, as in `deliver`, so a
//! replay and a live worker never post the same conversion at once.

use domain::{events::PortalId, failure::Failure, status::DeliveryStatus};
use shared::db;

pub use crate::pipeline::deliver::Sent;
use crate::{
    Worker,
    pipeline::deliver::{flag_refused_credentials, portal_credentials},
};

/// Posts conversion `id` with `params` (or the row's own payload);
/// a delivered row is posted again only when `force`.
pub async fn send(
    w: &Worker,
    portal: PortalId,
    id: i64,
    params: Option<Vec<(String, String)>>,
    force: bool,
) -> Result<Sent, Failure> {
    let (_, creds) = portal_credentials(w, portal).await?;
    let Some(creds) = creds else {
        return Ok(Sent::Failed(Failure::permanent(
            "portal_unconfigured",
            "the portal has no impact.com credentials",
        )));
    };
    let mut tx = w.pool.begin().await.map_err(Failure::database)?;
    let Some(row) = db::conversions::lock(&mut *tx, id)
        .await
        .map_err(Failure::database)?
    else {
        return Ok(Sent::Failed(Failure::permanent(
            "conversion_missing",
            format!("conversion {id} no longer exists"),
        )));
    };
    let delivered = row.status == DeliveryStatus::Delivered;
    if delivered && !force {
        return Ok(Sent::AlreadyDelivered);
    }
    let params = params.unwrap_or(row.params);
    let result = w
        .retry
        .run("impact_submit", || async {
            w.impact
                .submit_conversion(&creds, &params)
                .await
                .map_err(|e| e.failure())
        })
        .await;
    match result {
        Ok(queued) => {
            db::conversions::mark_delivered(&mut *tx, id, queued.queued_uri.as_deref())
                .await
                .map_err(Failure::database)?;
            tx.commit().await.map_err(Failure::database)?;
            metrics::counter!("worker_conversions_total", "outcome" => "replayed").increment(1);
            Ok(Sent::Delivered)
        }
        Err(f) => {
            // A failed replay of a delivered conversion leaves it delivered.
            if !delivered {
                db::conversions::mark_attempt_failed(&mut *tx, id, &f)
                    .await
                    .map_err(Failure::database)?;
            }
            tx.commit().await.map_err(Failure::database)?;
            flag_refused_credentials(w, portal, &f).await;
            Ok(Sent::Failed(f))
        }
    }
}
