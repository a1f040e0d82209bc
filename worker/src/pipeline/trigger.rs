//! The trigger step: the portal's triggers decide whether the event makes a
//! conversion; when none fires, the adjustment rules' outcome (if they
//! matched) or the reason to ignore it is recorded.

use domain::{
    events::HubSpotEvent,
    failure::Failure,
    object_type::ObjectType,
    portal::PortalConfig,
    status::EventStatus,
    triggers::{self, Decision, Firing},
};

use crate::pipeline::{adjust::Adjusted, record::EventRecord, result::EventResult};

/// What the trigger step decided.
pub enum Triggered {
    /// A trigger of this object type fired: go on to fetch the object.
    Fire(ObjectType, Firing),
    /// None fired; the event's outcome is recorded.
    Done(EventResult),
}

/// Evaluates the triggers of `config` for `event`, after the adjustment
/// rules did `adjusted`.
pub async fn trigger(
    rec: &EventRecord<'_>,
    config: &PortalConfig,
    event: &HubSpotEvent,
    adjusted: Option<Adjusted>,
) -> Result<Triggered, Failure> {
    let reason = match triggers::evaluate(&config.triggers, event) {
        Decision::Fire(t, f) => return Ok(Triggered::Fire(t, f)),
        Decision::Ignore(reason) => reason.as_str(),
    };
    let done = match adjusted {
        Some(Adjusted {
            failure: Some(f), ..
        }) => {
            rec.outcome(
                EventStatus::Failed,
                f.reason.as_str(),
                Some(f.detail.clone()),
            )
            .await?;
            EventResult::Failed(f)
        }
        Some(a) => {
            rec.outcome(EventStatus::Adjusted, a.reason, None).await?;
            EventResult::Adjusted {
                kind: a.kind,
                reason: a.reason,
                sent: a.sent,
            }
        }
        None => {
            rec.outcome(EventStatus::Ignored, reason, None).await?;
            EventResult::Ignored(reason)
        }
    };
    Ok(Triggered::Done(done))
}
