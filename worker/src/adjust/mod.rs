//! Reversals and modifications of delivered conversions (README "Reversals
//! and modifications"): the event is judged by the pure rules of
//! `domain::adjustments`; each delivered conversion of the object gets at
//! most one adjustment per kind and triggering event (the idempotency key),
//! recorded before it is sent, retried and dead-lettered like conversions.

mod amount;
pub mod cli;
pub mod send;

use domain::{
    adjustments::{self, Adjustment},
    events::HubSpotEvent,
    failure::Failure,
    portal::PortalConfig,
};
use shared::db::{self, adjustments::NewAdjustment};

use crate::{
    Worker,
    dlq::{self, send::Sent},
    pipeline::portal_key,
};

/// What the adjustment rules did with an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Adjusted {
    /// `reversal` or `modification`.
    pub kind: &'static str,
    /// The event's recorded reason: `reversed`, `modified`, or why nothing
    /// was sent (`nothing_to_adjust`, `already_reversed`, `same_amount`, ...).
    pub reason: &'static str,
    /// Adjustments impact.com queued.
    pub sent: usize,
    /// The first permanent failure (already dead-lettered).
    pub failure: Option<Failure>,
}

fn count(kind: &'static str, outcome: &'static str) {
    metrics::counter!("worker_adjustments_total", "kind" => kind, "outcome" => outcome)
        .increment(1);
}

/// Applies the portal's adjustment rules to `event`: `None` when no rule
/// matches. `Err` is transient (nothing final recorded for this event: the
/// retry finds the recorded adjustments by their key and resumes them).
pub async fn apply(
    w: &Worker,
    event: &HubSpotEvent,
    portal: &db::portals::StoredPortal,
    config: &PortalConfig,
) -> Result<Option<Adjusted>, Failure> {
    let Some((ty, adj)) = adjustments::evaluate(&config.adjustments, event) else {
        return Ok(None);
    };
    let rules = config.adjustments.get(&ty).cloned().unwrap_or_default();
    let kind = adj.kind();
    let object_id = i64::try_from(event.object_id).unwrap_or(-1);
    let conversions =
        db::adjustments::delivered_conversions(&w.pool, portal_key(event.portal_id), ty, object_id)
            .await
            .map_err(Failure::database)?;
    let mut out = Adjusted {
        kind,
        reason: "nothing_to_adjust",
        sent: 0,
        failure: None,
    };
    if conversions.is_empty() {
        count(kind, "nothing_to_adjust");
        tracing::info!(portal = %event.portal_id, object = event.object_id, kind,
            "no delivered conversion of the object: nothing to adjust");
        return Ok(Some(out));
    }
    let key = dlq::store::event_key(event);
    let mut amount: Option<Option<String>> = None;
    for (conversion, params) in conversions {
        let existing = db::adjustments::find(&w.pool, conversion, kind, &key)
            .await
            .map_err(Failure::database)?;
        let row = match existing {
            // Dead-lettered before; replays go through the dead letter.
            Some(row) if row.status == "failed" => {
                out.reason = "adjustment_failed";
                continue;
            }
            Some(row) => row,
            None => {
                if db::adjustments::reversed(&w.pool, conversion)
                    .await
                    .map_err(Failure::database)?
                {
                    let skip = if kind == "reversal" {
                        "already_reversed"
                    } else {
                        "conversion_reversed"
                    };
                    count(kind, skip);
                    out.reason = skip;
                    continue;
                }
                let identity = match adjustments::action_identity(ty, &params, &rules) {
                    Ok(i) => i,
                    Err(e) => {
                        let f = Failure::permanent("adjustment_unidentified", e.0);
                        dlq::store::permanent(w, event, Some(ty), &f, None, None).await?;
                        count(kind, f.reason);
                        out.failure.get_or_insert(f);
                        continue;
                    }
                };
                let (form, cause, sent_amount) = match &adj {
                    Adjustment::Reverse { cause } => {
                        let mut form = identity;
                        form.push(("DispositionCode".into(), rules.disposition().to_owned()));
                        (form, cause.clone(), None)
                    }
                    Adjustment::Modify { property, value } => {
                        let Some(field) = adjustments::amount_field(&params, &rules) else {
                            count(kind, "no_amount");
                            out.reason = "no_amount";
                            continue;
                        };
                        if amount.is_none() {
                            let fresh = amount::new_amount(
                                w, event, portal, config, ty, &field, property, value,
                            )
                            .await;
                            match fresh {
                                Ok(a) => amount = Some(a),
                                Err(f) if f.is_transient() => return Err(f),
                                Err(f) => {
                                    dlq::store::permanent(w, event, Some(ty), &f, None, None)
                                        .await?;
                                    count(kind, f.reason);
                                    out.failure.get_or_insert(f);
                                    return Ok(Some(out));
                                }
                            }
                        }
                        let Some(new) = amount.clone().flatten() else {
                            count(kind, "no_amount");
                            out.reason = "no_amount";
                            continue;
                        };
                        let last = db::adjustments::last_amount(&w.pool, conversion)
                            .await
                            .map_err(Failure::database)?
                            .or_else(|| {
                                params
                                    .iter()
                                    .find(|(n, _)| *n == field)
                                    .map(|(_, v)| v.clone())
                            });
                        if last.is_some_and(|l| adjustments::same_amount(&l, &new)) {
                            count(kind, "same_amount");
                            out.reason = "same_amount";
                            continue;
                        }
                        let mut form = identity;
                        form.push(("Reason".into(), rules.reason().to_owned()));
                        form.push(("Amount".into(), new.clone()));
                        (form, format!("{property}={new}"), Some(new))
                    }
                };
                let new = NewAdjustment {
                    portal_id: portal_key(event.portal_id),
                    conversion_id: conversion,
                    kind,
                    event_key: &key,
                    object_type: ty,
                    object_id,
                    cause: &cause,
                    form: &form,
                    amount: sent_amount.as_deref(),
                };
                match db::adjustments::record(&w.pool, &new)
                    .await
                    .map_err(Failure::database)?
                {
                    Some(row) => row,
                    None => {
                        count(kind, "already_reversed");
                        out.reason = "already_reversed";
                        continue;
                    }
                }
            }
        };
        match send::deliver(w, event.portal_id, row.id, false).await? {
            Sent::Delivered => out.sent += 1,
            Sent::AlreadyDelivered => {
                count(kind, "already_delivered");
                out.reason = "already_adjusted";
            }
            Sent::Failed(f) => {
                send::dead_letter(w, event, ty, &row, &f).await?;
                out.failure.get_or_insert(f);
            }
        }
    }
    // What was sent speaks for the event; otherwise the last reason why not.
    if out.sent > 0 {
        out.reason = if kind == "reversal" {
            "reversed"
        } else {
            "modified"
        };
    }
    Ok(Some(out))
}
