//! Replaying a dead-lettered adjustment (reversal or modification): its
//! recorded form is sent again, whatever the mode (it names the action and
//! the values that were refused). A delivered adjustment is sent again only
//! with `force`. The caller takes the dead letter, ends its lease and
//! audits the replay ([`super::replay::replay_held`]).

use domain::status::DeliveryStatus;
use serde_json::json;
use shared::db::{self, dead_letters::DeadLetter};

use super::report::{ReplayMode, ReplayOutcome, ReplayReport, portal_of, report};
use crate::{Worker, pipeline::deliver::Sent};

/// Replays dead letter `letter`, which holds adjustment `adjustment`.
pub(super) async fn replay(
    w: &Worker,
    letter: &DeadLetter,
    adjustment: i64,
    mode: ReplayMode,
) -> Result<ReplayReport, sqlx::Error> {
    let id = letter.id;
    let (Some(row), Some(portal)) = (
        db::adjustments::get(&w.pool, adjustment).await?,
        portal_of(letter),
    ) else {
        return Ok(report(
            id,
            ReplayOutcome::NothingToSend,
            format!("adjustment {adjustment} no longer exists"),
        ));
    };
    let delivered = row.delivery_status() == Some(DeliveryStatus::Delivered);
    let method = if row.kind == "reversal" {
        "DELETE"
    } else {
        "PUT"
    };
    if mode.dry_run {
        let detail = if delivered && !mode.force {
            format!(
                "would refuse: {} {adjustment} was delivered already",
                row.kind
            )
        } else {
            format!("would resend {} {adjustment} ({method} /Actions)", row.kind)
        };
        let mut r = report(id, ReplayOutcome::DryRun, detail);
        r.preview = Some(json!({ "method": method, "would_send": row.form }));
        return Ok(r);
    }
    if delivered && !mode.force {
        return Ok(report(
            id,
            ReplayOutcome::AlreadyDelivered,
            format!(
                "{} {adjustment} was delivered already; nothing sent (use --force to send it again)",
                row.kind
            ),
        ));
    }
    Ok(
        match crate::pipeline::adjust::send::deliver(w, portal, adjustment, mode.force).await {
            Ok(Sent::Delivered) => report(
                id,
                ReplayOutcome::Delivered,
                format!("{} {adjustment} delivered", row.kind),
            ),
            Ok(Sent::AlreadyDelivered) => report(
                id,
                ReplayOutcome::AlreadyDelivered,
                "delivered meanwhile; nothing sent",
            ),
            // The recorded form is what it is: the dead letter stays open.
            Ok(Sent::Failed(f)) | Err(f) => report(id, ReplayOutcome::Retry, f.to_string()),
        },
    )
}
