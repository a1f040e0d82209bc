//! Reads of personal data through the admin API (dead letters hold fetched
//! HubSpot records and payloads, conversions the values sent), recorded in
//! the audit log like every change: who (the operator token's name), which
//! route, the filter, the ids returned, when (the row's time). An audit
//! that cannot be written fails the read: nothing is shown unaudited.

use axum::http::StatusCode;
use serde_json::Value;
use shared::http::ApiError;

pub(super) use shared::db::audit::{id_list as ids, one_portal};

use super::AdminStore;

/// Records that `actor` read through `route` (`action`: `dead_letter.list`,
/// `dead_letter.show`, `conversion.list`, `replay.list`, `replay.show`).
pub(super) async fn read(
    w: &AdminStore,
    actor: &str,
    action: &str,
    route: &str,
    portal: Option<i64>,
    detail: Value,
) -> Result<(), ApiError> {
    shared::db::audit::record_read(&w.pool, portal, actor, action, route, detail)
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
