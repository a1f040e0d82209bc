//! `worker subscriptions`: the webhook subscriptions every active portal's
//! triggers and adjustment rules need, and those the pipeline itself reads
//! (derived in `domain::subscriptions`), and a warning for each routine one
//! whose events never arrived.

use domain::subscriptions::{Needed, needed, with_adjustments, with_product_events};
use shared::db;
use sqlx::PgPool;

/// The subscriptions every active portal needs (its triggers' and its
/// adjustment rules'), and the pipeline's own (`contact.privacyDeletion`,
/// merges and restores; `contact.deletion` with `erase_on_deletion`).
pub async fn load(pool: &PgPool, erase_on_deletion: bool) -> anyhow::Result<Vec<Needed>> {
    let triggers = needed(&db::subscriptions::active_triggers(pool).await?);
    let rules = db::subscriptions::active_adjustment_rules(pool).await?;
    Ok(with_product_events(
        with_adjustments(triggers, &rules),
        erase_on_deletion,
    ))
}

/// The routine subscriptions (creations, property changes) of which no
/// event was received in the last `days` days.
pub async fn never_seen(
    pool: &PgPool,
    needed: &[Needed],
    days: u32,
) -> anyhow::Result<Vec<Needed>> {
    let seen = db::subscriptions::seen_since(pool, days).await?;
    Ok(needed
        .iter()
        .filter(|n| n.routine())
        .filter(|n| {
            !seen.contains(&(
                n.subscription_type.clone(),
                n.property.clone().unwrap_or_default(),
            ))
        })
        .cloned()
        .collect())
}
