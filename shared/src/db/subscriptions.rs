//! What the webhook subscriptions are computed from: every active portal's
//! triggers and adjustment rules, and the events received lately.

use std::collections::BTreeSet;

use domain::{adjustments::ObjectAdjustments, object_type::ObjectType};
use sqlx::{PgPool, Row};

/// A portal's triggers of one object type: `(portal, object type,
/// on_create, watched properties in order)`.
pub type TriggerRow = (i64, ObjectType, bool, Vec<String>);

/// Every active portal's triggers (unknown object types left out).
pub async fn active_triggers(pool: &PgPool) -> Result<Vec<TriggerRow>, sqlx::Error> {
    let triggers = sqlx::query(
        "SELECT t.portal_id, t.object_type, t.on_create,
                COALESCE(array_agg(tp.property ORDER BY tp.position) FILTER (WHERE tp.property IS NOT NULL), '{}') AS props
         FROM triggers t JOIN portals p USING (portal_id)
         LEFT JOIN trigger_properties tp ON tp.portal_id = t.portal_id AND tp.object_type = t.object_type
         WHERE p.status = 'active'
         GROUP BY t.portal_id, t.object_type, t.on_create",
    )
    .fetch_all(pool)
    .await?;
    let mut rows = Vec::new();
    for r in triggers {
        let ty: String = r.try_get("object_type")?;
        let Some(ty) = ObjectType::parse(&ty) else {
            continue;
        };
        rows.push((
            r.try_get("portal_id")?,
            ty,
            r.try_get("on_create")?,
            r.try_get::<Vec<String>, _>("props")?,
        ));
    }
    Ok(rows)
}

/// Every active portal's adjustment rules (unreadable ones left out).
pub async fn active_adjustment_rules(
    pool: &PgPool,
) -> Result<Vec<(i64, ObjectType, ObjectAdjustments)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT a.portal_id, a.object_type, a.rules FROM adjustment_rules a
         JOIN portals p USING (portal_id) WHERE p.status = 'active'",
    )
    .fetch_all(pool)
    .await?;
    let mut out = Vec::new();
    for r in rows {
        let ty: String = r.try_get("object_type")?;
        let (Some(ty), Ok(rules)) = (
            ObjectType::parse(&ty),
            serde_json::from_value(r.try_get("rules")?),
        ) else {
            continue;
        };
        out.push((r.try_get("portal_id")?, ty, rules));
    }
    Ok(out)
}

/// `(subscription type, property name)` of the events processed in the last
/// `days` days.
pub async fn seen_since(
    pool: &PgPool,
    days: u32,
) -> Result<BTreeSet<(String, String)>, sqlx::Error> {
    Ok(sqlx::query(
        "SELECT DISTINCT subscription_type, property_name FROM webhook_events
         WHERE processed_at > now() - make_interval(days => $1)",
    )
    .bind(i32::try_from(days).unwrap_or(i32::MAX))
    .fetch_all(pool)
    .await?
    .into_iter()
    .filter_map(|r| {
        Some((
            r.try_get("subscription_type").ok()?,
            r.try_get("property_name").ok()?,
        ))
    })
    .collect())
}
