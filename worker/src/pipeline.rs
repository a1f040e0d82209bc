//! One event, from the queue to impact.com: dedupe, portal, triggers, fetch,
//! map, record, deliver (docs/src/architecture.md).

use chrono::{DateTime, Utc};
use domain::{
    events::{HubSpotEvent, PortalId},
    failure::Failure,
    mapping,
    portal::{HubSpotAuthKind, PortalStatus},
    triggers::{self, Decision},
};
use secrecy::SecretString;
use shared::db::{self, events::EventKey};

use crate::{
    Worker,
    deliver::deliver,
    dlq,
    fetch::{FetchRequest, fetch},
    prefetch::Prefetched,
    tokens::hubspot_token,
};

/// How an event ended. Every variant is committed before it is returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventResult {
    /// Seen before (same identity): nothing done.
    Duplicate,
    /// Portal unknown, paused, uninstalled or unconfigured (the reason).
    Skipped(&'static str),
    /// No trigger fired (the reason).
    Ignored(&'static str),
    /// A permanent failure, recorded with its reason.
    Failed(Failure),
    /// impact.com queued the conversion.
    Delivered {
        /// The conversion row.
        conversion_id: i64,
        /// impact.com's submission URI.
        queued_uri: Option<String>,
    },
    /// The conversion's key was delivered before (by another event): not sent again.
    AlreadyDelivered {
        /// The conversion row.
        conversion_id: i64,
    },
    /// No trigger fired, but the adjustment rules matched (reversal or
    /// modification of the object's delivered conversions).
    Adjusted {
        /// `reversal` or `modification`.
        kind: &'static str,
        /// `reversed`, `modified`, or why nothing was sent.
        reason: &'static str,
        /// Adjustments impact.com queued.
        sent: usize,
    },
}

impl EventResult {
    /// Metric label.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Duplicate => "duplicate",
            Self::Skipped(_) => "skipped",
            Self::Ignored(_) => "ignored",
            Self::Failed(_) => "failed",
            Self::Delivered { .. } => "delivered",
            Self::AlreadyDelivered { .. } => "already_delivered",
            Self::Adjusted { .. } => "adjusted",
        }
    }
}

/// Processes one event. `Err` is a transient failure after which nothing
/// final was recorded: the event must be retried.
pub async fn process_event(
    w: &Worker,
    event: &HubSpotEvent,
    received_at: Option<DateTime<Utc>>,
    prefetched: &Prefetched,
) -> Result<EventResult, Failure> {
    let key = EventKey::of(event);
    let known_unseen = prefetched.known_unseen(&key);
    let seen = if known_unseen {
        None
    } else {
        db::events::lookup(&w.pool, &key)
            .await
            .map_err(Failure::database)?
    };
    if let Some(seen) = seen {
        return match seen.conversion {
            // Recorded, but its delivery did not finish (crash, or a
            // transient failure): resume it with the recorded payload.
            Some((id, status)) if status == "pending" => {
                metrics::counter!("worker_conversions_resumed_total").increment(1);
                let result = deliver(w, event.portal_id, id).await;
                dead_letter_refused(w, event, None, &result, None, id).await?;
                result
            }
            _ => Ok(EventResult::Duplicate),
        };
    }
    // Erasure requests; events of erased contacts (the message's lookup
    // says which may be: only those are checked here).
    if let Some(done) = crate::privacy::on_event(w, event, &key, received_at, !known_unseen).await?
    {
        return Ok(done);
    }
    let record = |status: &'static str, reason: &'static str, error: Option<String>| {
        let key = &key;
        async move {
            crate::record_batch::outcome(w, key, event, received_at, (status, reason, error))
                .await
                .map_err(Failure::database)
        }
    };

    let portal = w
        .portals
        .get(&w.pool, &w.cipher, event.portal_id)
        .await
        .map_err(Failure::database)?;
    let skip = match &portal {
        None => Some("unknown_portal"),
        Some(p) if p.status == PortalStatus::Paused => Some("portal_paused"),
        Some(p) if p.status == PortalStatus::Uninstalled => Some("portal_uninstalled"),
        Some(p) if p.config.is_none() || p.impact_auth_token.is_none() => {
            Some("portal_unconfigured")
        }
        Some(_) => None,
    };
    let (Some(portal), None) = (portal, skip) else {
        let reason = skip.unwrap_or("unknown_portal");
        record("skipped", reason, None).await?;
        return Ok(EventResult::Skipped(reason));
    };
    let config = portal.config.as_ref().expect("checked above");

    // Adjustments first: they are idempotent on their own key, so a retry
    // of the conversion below never sends them twice.
    let adjusted = crate::adjust::apply(w, event, &portal, config).await?;
    let (object_type, firing) = match triggers::evaluate(&config.triggers, event) {
        Decision::Fire(t, f) => (t, f),
        Decision::Ignore(_) if adjusted.is_some() => {
            let a = adjusted.expect("checked");
            return match a.failure {
                Some(f) => {
                    record("failed", f.reason, Some(f.detail.clone())).await?;
                    Ok(EventResult::Failed(f))
                }
                None => {
                    record("adjusted", a.reason, None).await?;
                    Ok(EventResult::Adjusted {
                        kind: a.kind,
                        reason: a.reason,
                        sent: a.sent,
                    })
                }
            };
        }
        Decision::Ignore(reason) => {
            record("ignored", reason.as_str(), None).await?;
            return Ok(EventResult::Ignored(reason.as_str()));
        }
    };
    let rows = config
        .mappings
        .get(&object_type)
        .map(Vec::as_slice)
        .unwrap_or_default();

    // Short blips (a 5xx, a secondly rate limit) are retried in process.
    let (portal_ref, firing_ref) = (&portal, &firing);
    let fetched = w
        .retry
        .run("hubspot_fetch", || async move {
            let read = |token: SecretString| async move {
                let request = FetchRequest {
                    portal: event.portal_id,
                    token: &token,
                    object_type,
                    event,
                    firing: firing_ref,
                    mappings: rows,
                    program_id: &config.impact_program_id,
                };
                (fetch(w, &request, prefetched).await, token)
            };
            let (fetched, token) = read(hubspot_token(w, event.portal_id, portal_ref).await?).await;
            match fetched {
                // HubSpot refused a token we held for valid: refreshed now
                // and read again at once (an OAuth token; a private-app
                // token cannot be refreshed and the failure stands).
                Err(f)
                    if f.reason == "hubspot_auth"
                        && portal_ref.auth_kind == HubSpotAuthKind::Oauth =>
                {
                    crate::tokens::token_rejected(w, event.portal_id, portal_ref, &token).await?;
                    read(hubspot_token(w, event.portal_id, portal_ref).await?)
                        .await
                        .0
                }
                other => other,
            }
        })
        .await;
    // The fetched object goes to the dead-letter store with a failure; it
    // is turned into JSON only then.
    let mut context = None;
    let prepared = fetched.and_then(|ctx| {
        let built =
            mapping::build(rows, &ctx).map_err(|e| Failure::permanent(e.reason(), e.to_string()));
        context = Some(ctx);
        built
    });
    let fetched_json =
        |context: &Option<domain::mapping::Context>| context.as_ref().map(dlq::store::context_json);
    let conversion = match prepared {
        Ok(c) => c,
        Err(f) if f.is_transient() => return Err(f),
        // The refresh found the app uninstalled: the portal is paused now.
        Err(f) if f.reason == "hubspot_uninstalled" => {
            record("skipped", "portal_uninstalled", Some(f.detail)).await?;
            return Ok(EventResult::Skipped("portal_uninstalled"));
        }
        Err(f) => {
            let fetched = fetched_json(&context);
            dlq::store::permanent(w, event, Some(object_type), &f, fetched, None).await?;
            record("failed", f.reason, Some(f.detail.clone())).await?;
            return Ok(EventResult::Failed(f));
        }
    };
    for note in &conversion.notes {
        tracing::debug!(portal = %event.portal_id, order_id = %conversion.order_id, "{note}");
    }

    // The conversion and the event's outcome are committed together (one
    // statement).
    let (row, first) =
        crate::record_batch::converted(w, object_type, &conversion, &key, event, received_at)
            .await
            .map_err(Failure::database)?;
    if !first {
        // A concurrent duplicate of this event got there first; it delivers.
        return Ok(EventResult::Duplicate);
    }
    if row.status == "delivered" {
        return Ok(EventResult::AlreadyDelivered {
            conversion_id: row.id,
        });
    }
    let result = deliver(w, event.portal_id, row.id).await;
    if matches!(result, Ok(EventResult::Failed(_))) {
        let fetched = fetched_json(&context);
        dead_letter_refused(w, event, Some(object_type), &result, fetched, row.id).await?;
    }
    result
}

/// A delivery impact.com refused for good goes to the dead-letter store
/// with the payload and the fetched object.
async fn dead_letter_refused(
    w: &Worker,
    event: &HubSpotEvent,
    object_type: Option<domain::object_type::ObjectType>,
    result: &Result<EventResult, Failure>,
    fetched: Option<serde_json::Value>,
    conversion_id: i64,
) -> Result<(), Failure> {
    let Ok(EventResult::Failed(f)) = result else {
        return Ok(());
    };
    dlq::store::permanent(w, event, object_type, f, fetched, Some(conversion_id)).await
}

/// The portal id as stored.
pub fn portal_key(p: PortalId) -> i64 {
    i64::try_from(p.0).unwrap_or(-1)
}
