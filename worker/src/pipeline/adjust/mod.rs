//! Reversals and modifications of delivered conversions (README "Reversals
//! and modifications"): the event is judged by the pure rules of
//! `domain::adjustments`; each delivered conversion of the object gets at
//! most one adjustment per kind and triggering event (the idempotency key),
//! recorded before it is sent, retried and dead-lettered like conversions.

mod amount;
pub mod send;

use domain::{
    adjustments::{self, Adjustment, ObjectAdjustments},
    events::HubSpotEvent,
    failure::{Failure, FailureReason},
    object_type::ObjectType,
    portal::PortalConfig,
    status::DeliveryStatus,
};
use shared::db::{
    self,
    adjustments::{AdjustmentRow, NewAdjustment},
    portals::StoredPortal,
};

use crate::{
    Worker,
    pipeline::{dead_letter, deliver::Sent},
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

/// Carries out `(ty, adj)`, what the portal's adjustment rules make of
/// `event` (`domain::adjustments::evaluate`; the caller skips this when no
/// rule matches). `Err` is
/// transient (nothing final recorded for this event: the retry finds the
/// recorded adjustments by their key and resumes them).
pub async fn apply(
    w: &Worker,
    event: &HubSpotEvent,
    portal: &StoredPortal,
    config: &PortalConfig,
    (ty, adj): (ObjectType, Adjustment),
) -> Result<Option<Adjusted>, Failure> {
    let rules = config.adjustments.get(&ty).cloned().unwrap_or_default();
    let plan = Plan {
        w,
        event,
        portal,
        config,
        ty,
        kind: adj.kind(),
        adj: &adj,
        rules: &rules,
        key: dead_letter::event_key(event),
        object_id: i64::try_from(event.object_id).unwrap_or(-1),
    };
    if merged_away(w, event, ty, &adj).await? {
        count(plan.kind, "merged_away");
        return Ok(Some(Adjusted {
            kind: plan.kind,
            reason: "merged_away",
            sent: 0,
            failure: None,
        }));
    }
    let conversions = db::adjustments::delivered_conversions(
        &w.pool,
        event.portal_id.db_key(),
        ty,
        plan.object_id,
    )
    .await
    .map_err(Failure::database)?;
    let mut out = Adjusted {
        kind: plan.kind,
        reason: "nothing_to_adjust",
        sent: 0,
        failure: None,
    };
    if conversions.is_empty() {
        count(plan.kind, "nothing_to_adjust");
        tracing::info!(portal = %event.portal_id, object = event.object_id, kind = plan.kind,
            "no delivered conversion of the object: nothing to adjust");
        return Ok(Some(out));
    }
    // The new amount of a modification, fetched once for all conversions.
    let mut amount: Option<Option<String>> = None;
    for (conversion, params) in conversions {
        match plan.step(conversion, &params, &mut amount).await? {
            Step::Send(row) => plan.send(&row, &mut out).await?,
            Step::Skip(reason) => out.reason = reason,
            Step::Failed(f) => {
                out.failure.get_or_insert(f);
            }
            Step::Stop(f) => {
                out.failure.get_or_insert(f);
                return Ok(Some(out));
            }
        }
    }
    // What was sent speaks for the event; otherwise the last reason why not.
    if out.sent > 0 {
        out.reason = if plan.kind == "reversal" {
            "reversed"
        } else {
            "modified"
        };
    }
    Ok(Some(out))
}

/// Whether `adj` is the deletion of an id merged into another record: the
/// record lives on as the survivor, whose conversions these are now.
async fn merged_away(
    w: &Worker,
    event: &HubSpotEvent,
    ty: ObjectType,
    adj: &Adjustment,
) -> Result<bool, Failure> {
    if event.object_and_action().map(|(_, a)| a) != Some("deletion")
        || !matches!(adj, Adjustment::Reverse { .. })
    {
        return Ok(false);
    }
    let id = i64::try_from(event.object_id).unwrap_or(-1);
    let survivor = db::merges::resolve(&w.pool, event.portal_id.db_key(), ty, id)
        .await
        .map_err(Failure::database)?;
    Ok(survivor != id)
}

/// What one delivered conversion gets.
enum Step {
    /// Send (or resume) this recorded adjustment.
    Send(Box<AdjustmentRow>),
    /// Nothing sent, for this reason.
    Skip(&'static str),
    /// Dead-lettered; the other conversions go on.
    Failed(Failure),
    /// Dead-lettered; the event's adjustments stop here.
    Stop(Failure),
}

/// An adjustment's form, cause and amount.
type Form = (Vec<(String, String)>, String, Option<String>);

/// One event's adjustment of an object's delivered conversions.
struct Plan<'a> {
    w: &'a Worker,
    event: &'a HubSpotEvent,
    portal: &'a StoredPortal,
    config: &'a PortalConfig,
    ty: ObjectType,
    kind: &'static str,
    adj: &'a Adjustment,
    rules: &'a ObjectAdjustments,
    /// The event's identity: one adjustment per kind and event.
    key: String,
    object_id: i64,
}

impl Plan<'_> {
    /// The adjustment of `conversion`: recorded before (resumed), recorded
    /// now, or why none.
    async fn step(
        &self,
        conversion: i64,
        params: &[(String, String)],
        amount: &mut Option<Option<String>>,
    ) -> Result<Step, Failure> {
        let (w, kind) = (self.w, self.kind);
        let existing = db::adjustments::find(&w.pool, conversion, kind, &self.key)
            .await
            .map_err(Failure::database)?;
        match existing {
            // Dead-lettered before; replays go through the dead letter.
            Some(row) if row.delivery_status() == Some(DeliveryStatus::Failed) => {
                return Ok(Step::Skip("adjustment_failed"));
            }
            Some(row) => return Ok(Step::Send(Box::new(row))),
            None => {}
        }
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
            return Ok(Step::Skip(skip));
        }
        let identity = match adjustments::action_identity(self.ty, params, self.rules) {
            Ok(i) => i,
            Err(e) => {
                let f = Failure::permanent(FailureReason::AdjustmentUnidentified, e.0);
                return Ok(Step::Failed(self.dead_letter(f).await?));
            }
        };
        let (form, cause, sent_amount) = match self.adj {
            Adjustment::Reverse { cause } => {
                let mut form = identity;
                form.push((
                    "DispositionCode".into(),
                    self.rules.disposition().to_owned(),
                ));
                (form, cause.clone(), None)
            }
            Adjustment::Modify { property, value } => {
                let modification = self
                    .modification(conversion, params, identity, (property, value), amount)
                    .await?;
                match modification {
                    Ok(form) => form,
                    Err(step) => return Ok(step),
                }
            }
        };
        self.record(conversion, &form, &cause, sent_amount.as_deref())
            .await
    }

    /// A modification's form: the identity with the reason and the new
    /// amount; or why none (no amount, the same amount, a failed fetch).
    async fn modification(
        &self,
        conversion: i64,
        params: &[(String, String)],
        mut form: Vec<(String, String)>,
        (property, value): (&str, &Option<String>),
        amount: &mut Option<Option<String>>,
    ) -> Result<Result<Form, Step>, Failure> {
        let Some(field) = adjustments::amount_field(params, self.rules) else {
            count(self.kind, "no_amount");
            return Ok(Err(Step::Skip("no_amount")));
        };
        if amount.is_none() {
            let (w, event) = (self.w, self.event);
            let (portal, config, ty) = (self.portal, self.config, self.ty);
            match amount::new_amount(w, event, portal, config, ty, &field, property, value).await {
                Ok(a) => *amount = Some(a),
                Err(f) if f.is_transient() => return Err(f),
                Err(f) => return Ok(Err(Step::Stop(self.dead_letter(f).await?))),
            }
        }
        let Some(new) = amount.clone().flatten() else {
            count(self.kind, "no_amount");
            return Ok(Err(Step::Skip("no_amount")));
        };
        let last = db::adjustments::last_amount(&self.w.pool, conversion)
            .await
            .map_err(Failure::database)?
            .or_else(|| {
                params
                    .iter()
                    .find(|(n, _)| *n == field)
                    .map(|(_, v)| v.clone())
            });
        if last.is_some_and(|l| adjustments::same_amount(&l, &new)) {
            count(self.kind, "same_amount");
            return Ok(Err(Step::Skip("same_amount")));
        }
        form.push(("Reason".into(), self.rules.reason().to_owned()));
        form.push(("Amount".into(), new.clone()));
        Ok(Ok((form, format!("{property}={new}"), Some(new))))
    }

    /// Records the adjustment before it is sent (its key makes it once).
    async fn record(
        &self,
        conversion: i64,
        form: &[(String, String)],
        cause: &str,
        amount: Option<&str>,
    ) -> Result<Step, Failure> {
        let new = NewAdjustment {
            portal_id: self.event.portal_id.db_key(),
            conversion_id: conversion,
            kind: self.kind,
            event_key: &self.key,
            object_type: self.ty,
            object_id: self.object_id,
            cause,
            form,
            amount,
        };
        let recorded = db::adjustments::record(&self.w.pool, &new)
            .await
            .map_err(Failure::database)?;
        Ok(match recorded {
            Some(row) => Step::Send(Box::new(row)),
            None => {
                count(self.kind, "already_reversed");
                Step::Skip("already_reversed")
            }
        })
    }

    /// Sends a recorded adjustment; a refusal is dead-lettered.
    async fn send(&self, row: &AdjustmentRow, out: &mut Adjusted) -> Result<(), Failure> {
        match send::deliver(self.w, self.event.portal_id, row.id, false).await? {
            Sent::Delivered => out.sent += 1,
            Sent::AlreadyDelivered => {
                count(self.kind, "already_delivered");
                out.reason = "already_adjusted";
            }
            Sent::Failed(f) => {
                send::dead_letter(self.w, self.event, self.ty, row, &f).await?;
                out.failure.get_or_insert(f);
            }
        }
        Ok(())
    }

    /// A permanent failure of the event's adjustment, dead-lettered.
    async fn dead_letter(&self, f: Failure) -> Result<Failure, Failure> {
        dead_letter::permanent(self.w, self.event, Some(self.ty), &f, None, None).await?;
        count(self.kind, f.reason.as_str());
        Ok(f)
    }
}
