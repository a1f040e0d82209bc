//! Activity: recent conversions, adjustments, dead letters and replay
//! requests; replaying a dead letter (a request a worker carries out).

use domain::events::PortalId;
use serde::Serialize;
use shared::{
    broker::ReplayMode,
    db::{replays::ReplayRequestRow, website},
};
use uuid::Uuid;

pub use shared::db::website::{ConversionItem, DeadLetterItem};

use super::{OpError, Website};

/// One reversal or modification in Activity.
#[derive(Debug, Serialize)]
pub struct AdjustmentItem {
    /// Row id.
    pub id: i64,
    /// `reversal` or `modification`.
    pub kind: String,
    /// `pending`, `delivered`, `failed`.
    pub status: String,
    /// Object type.
    pub object_type: String,
    /// HubSpot object id.
    pub object_id: i64,
    /// The conversion adjusted.
    pub conversion_id: i64,
    /// Its OrderId.
    pub order_id: Option<String>,
    /// Why (`dealstage=closedlost`, `deleted`, `amount=1500`).
    pub cause: String,
    /// Modifications: the new Amount.
    pub amount: Option<String>,
    /// impact.com's QueuedUri.
    pub queued_uri: Option<String>,
    /// Why the last attempt failed.
    pub failure_reason: Option<String>,
    /// When it was recorded (RFC 3339).
    pub created_at: String,
}

/// Activity: recent conversions, adjustments, dead letters and replays.
#[derive(Debug, Serialize)]
pub struct Activity {
    /// The 50 most recent conversions.
    pub conversions: Vec<ConversionItem>,
    /// The 50 most recent reversals and modifications.
    pub adjustments: Vec<AdjustmentItem>,
    /// The 50 most recent dead letters.
    pub dead_letters: Vec<DeadLetterItem>,
    /// The 10 most recent replay requests, with their progress.
    pub replays: Vec<ReplayRequestRow>,
}

/// The portal's recent activity.
pub async fn activity(site: &Website, portal: PortalId) -> Result<Activity, OpError> {
    let id = i64::try_from(portal.0).unwrap_or(-1);
    let adjustments = shared::db::adjustments::list(&site.pool, Some(id), None, 50)
        .await?
        .into_iter()
        .map(|a| AdjustmentItem {
            order_id: a
                .form
                .iter()
                .find(|(k, _)| k == "OrderId")
                .map(|(_, v)| v.clone()),
            id: a.id,
            kind: a.kind,
            status: a.status,
            object_type: a.object_type,
            object_id: a.object_id,
            conversion_id: a.conversion_id,
            cause: a.cause,
            amount: a.amount,
            queued_uri: a.queued_uri,
            failure_reason: a.failure_reason,
            created_at: a.created_at.to_rfc3339(),
        })
        .collect();
    Ok(Activity {
        conversions: website::recent_conversions(&site.pool, id).await?,
        adjustments,
        dead_letters: website::open_dead_letters(&site.pool, id).await?,
        replays: shared::db::replays::list(&site.pool, Some(id), 10).await?,
    })
}

/// Asks the workers to replay one of the portal's dead letters with its
/// current configuration and a fresh object, as `worker dlq replay ID`
/// does (a delivered conversion is never sent again from here). Returns
/// the request's id; its progress shows in [`Activity::replays`].
pub async fn replay(
    site: &Website,
    portal: PortalId,
    id: i64,
    actor: &str,
) -> Result<Uuid, OpError> {
    let portal_id = i64::try_from(portal.0).ok();
    // Another portal's dead letter is "not found", never "forbidden": no
    // information about other tenants leaks.
    if website::dead_letter_portal(&site.pool, id).await? != portal_id {
        return Err(OpError::Missing(format!(
            "no dead letter {id} for this portal"
        )));
    }
    site.replays
        .request(&site.pool, actor, portal_id, &[id], ReplayMode::default())
        .await
        .map_err(request_error)
}

/// A replay request's failure as the portal's user may see it.
fn request_error(e: crate::replays::RequestError) -> OpError {
    use shared::db::dead_letter_leases::Unavailable;
    match e {
        crate::replays::RequestError::Database(e) => e.into(),
        // Who holds the lease is not the tenant's business.
        crate::replays::RequestError::Unavailable { id, why } => match why {
            Unavailable::NotFound => {
                OpError::Missing(format!("no dead letter {id} for this portal"))
            }
            Unavailable::Replaying { .. } => OpError::Conflict(format!(
                "dead letter {id} is already being replayed; try again once that replay ends"
            )),
            Unavailable::Closed { state } => {
                OpError::Conflict(format!("dead letter {id} is {state}"))
            }
        },
        other => OpError::Unavailable(format!(
            "the replay could not be queued right now; try again in a moment (reference {})",
            shared::http::logged("replay request", other)
        )),
    }
}

/// "Send again" of one of the portal's delivered conversions (it may credit
/// the sale twice: the page asks for a confirmation first). Carried out as
/// a forced replay of its parameters as sent, through a dead letter of
/// reason `resend_requested`; returns the replay request's id.
pub async fn send_again(
    site: &Website,
    portal: PortalId,
    id: i64,
    actor: &str,
) -> Result<Uuid, OpError> {
    use shared::db::website::story::{self, ResendRefusal};
    let portal_id = i64::try_from(portal.0).unwrap_or(-1);
    let letter = match story::resend_letter(&site.pool, portal_id, id, actor).await? {
        Ok(letter) => letter,
        Err(ResendRefusal::NotFound) => {
            return Err(OpError::Missing(format!(
                "no conversion {id} for this portal"
            )));
        }
        Err(ResendRefusal::NotDelivered) => {
            return Err(OpError::Conflict(format!(
                "conversion {id} is not delivered: replay its dead letter instead"
            )));
        }
    };
    let mode = ReplayMode {
        dry_run: false,
        as_sent: true,
        force: true,
    };
    site.replays
        .request(&site.pool, actor, Some(portal_id), &[letter], mode)
        .await
        .map_err(request_error)
}

/// One of the portal's replay requests.
pub async fn replay_request(
    site: &Website,
    portal: PortalId,
    id: Uuid,
) -> Result<ReplayRequestRow, OpError> {
    let portal_id = i64::try_from(portal.0).ok();
    shared::db::replays::get(&site.pool, id)
        .await?
        .filter(|r| r.portal_id == portal_id)
        .ok_or_else(|| OpError::Missing(format!("no replay request {id} for this portal")))
}
