//! `worker subscriptions`: the webhook subscriptions every active portal's
//! triggers and adjustment rules need (derived in `domain::subscriptions`),
//! ready to paste into the app's configuration, and a warning for each one
//! whose events never arrived.

use domain::subscriptions::{Needed, needed, with_adjustments};
use shared::db;
use sqlx::PgPool;

/// The subscriptions every active portal needs: its triggers' and its
/// adjustment rules'.
pub async fn load(pool: &PgPool) -> anyhow::Result<Vec<Needed>> {
    let triggers = needed(&db::subscriptions::active_triggers(pool).await?);
    let rules = db::subscriptions::active_adjustment_rules(pool).await?;
    Ok(with_adjustments(triggers, &rules))
}

/// The subscriptions of which no event was received in the last `days` days.
pub async fn never_seen(
    pool: &PgPool,
    needed: &[Needed],
    days: u32,
) -> anyhow::Result<Vec<Needed>> {
    let seen = db::subscriptions::seen_since(pool, days).await?;
    Ok(needed
        .iter()
        .filter(|n| {
            !seen.contains(&(
                n.subscription_type.clone(),
                n.property.clone().unwrap_or_default(),
            ))
        })
        .cloned()
        .collect())
}
