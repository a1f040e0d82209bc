//! The `audit_log` table: who did what (configuration changes, replays,
//! discards, reads of personal data), when, and with what outcome.

use serde_json::{Value, json};
use sqlx::PgExecutor;

/// Most ids listed in one audit row of a read (the count is always there).
pub const MAX_READ_IDS: usize = 1000;

/// The one portal of a read: the filter's, or the rows' when they all
/// share one (the audit row's `portal_id`, which privacy erasure and
/// account deletion find it by).
pub fn one_portal(
    filter: Option<i64>,
    portals: impl IntoIterator<Item = Option<i64>>,
) -> Option<i64> {
    if filter.is_some() {
        return filter;
    }
    let mut portals = portals.into_iter();
    let first = portals.next()??;
    portals.all(|p| p == Some(first)).then_some(first)
}

/// `{"ids": [..], "count": n, "truncated": bool}`: the ids a read returned,
/// at most [`MAX_READ_IDS`] of them.
pub fn id_list(ids: impl IntoIterator<Item = Value>) -> Value {
    let all: Vec<Value> = ids.into_iter().collect();
    let count = all.len();
    let listed: Vec<Value> = all.into_iter().take(MAX_READ_IDS).collect();
    json!({ "ids": listed, "count": count, "truncated": count > MAX_READ_IDS })
}

/// Records that `actor` read personal data through `route` (an admin route
/// or a `worker` command): outcome `read`, `detail` plus the route.
pub async fn record_read<'e>(
    db: impl PgExecutor<'e>,
    portal: Option<i64>,
    actor: &str,
    action: &str,
    route: &str,
    mut detail: Value,
) -> Result<(), sqlx::Error> {
    if let Some(d) = detail.as_object_mut() {
        d.insert("route".into(), json!(route));
    }
    record(db, portal, actor, action, &detail, "read").await
}

/// Appends to the audit log: who did what, with what outcome.
pub async fn record<'e>(
    db: impl PgExecutor<'e>,
    portal: Option<i64>,
    actor: &str,
    action: &str,
    detail: &Value,
    outcome: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO audit_log (portal_id, actor, action, detail, outcome) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(portal)
    .bind(actor)
    .bind(action)
    .bind(detail)
    .bind(outcome)
    .execute(db)
    .await
    .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_audited_portal_is_the_filters_or_the_rows_one() {
        assert_eq!(one_portal(Some(7), [Some(8)]), Some(7));
        assert_eq!(one_portal(None, [Some(8), Some(8)]), Some(8));
        assert_eq!(one_portal(None, [Some(8), Some(9)]), None);
        assert_eq!(one_portal(None, [Some(8), None]), None);
        assert_eq!(one_portal(None, []), None);
    }

    #[test]
    fn long_id_lists_are_cut_but_counted() {
        let v = id_list((0..1500).map(|i| json!(i)));
        assert_eq!(v["count"], 1500);
        assert_eq!(v["ids"].as_array().map(Vec::len), Some(MAX_READ_IDS));
        assert_eq!(v["truncated"], true);
    }
}
