//! Reads of personal data through the admin API (dead letters hold fetched
//! HubSpot records and payloads, conversions the values sent), recorded in
//! the audit log like every change: who (the operator token's name), which
//! route, the filter, the ids returned, when (the row's time). An audit
//! that cannot be written fails the read: nothing is shown unaudited.

use axum::http::StatusCode;
use serde_json::{Value, json};
use shared::http::ApiError;

use super::AdminStore;

/// Most ids listed in one audit row (the count is always there).
const MAX_IDS: usize = 1000;

/// The one portal of `portals` (the filter's, or the rows' when they all
/// share one), for the audit row's `portal_id`.
pub(super) fn one_portal(
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

/// `{"ids": [..], "count": n}` with at most [`MAX_IDS`] ids.
pub(super) fn ids(ids: impl IntoIterator<Item = Value>) -> Value {
    let all: Vec<Value> = ids.into_iter().collect();
    let count = all.len();
    let listed: Vec<Value> = all.into_iter().take(MAX_IDS).collect();
    json!({ "ids": listed, "count": count, "truncated": count > MAX_IDS })
}

/// Records that `actor` read through `route` (`action`: `dead_letter.list`,
/// `dead_letter.show`, `conversion.list`, `replay.list`, `replay.show`).
pub(super) async fn read(
    w: &AdminStore,
    actor: &str,
    action: &str,
    route: &str,
    portal: Option<i64>,
    mut detail: Value,
) -> Result<(), ApiError> {
    if let Some(d) = detail.as_object_mut() {
        d.insert("route".into(), json!(route));
    }
    shared::db::audit::record(&w.pool, portal, actor, action, &detail, "read")
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, action, "admin API: the read could not be audited; refused");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                "the read could not be audited, so it is refused",
            )
        })
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
        let v = ids((0..1500).map(|i| json!(i)));
        assert_eq!(v["count"], 1500);
        assert_eq!(v["ids"].as_array().map(Vec::len), Some(MAX_IDS));
        assert_eq!(v["truncated"], true);
    }
}
