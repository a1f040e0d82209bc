//! Account information: `GET /account-info/v3/details`, with the portal's
//! company currency (`USD` unless a test sets another, or none).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::limits::Caller;
use super::{FakeHubSpot, errors};
use crate::lock;

/// The company currency of a new portal.
pub(crate) const DEFAULT_CURRENCY: &str = "USD";

/// The API route (behind the gate: bearer token, scopes, rate limit).
pub(crate) fn routes() -> Router<FakeHubSpot> {
    Router::new().route("/account-info/v3/details", get(details))
}

/// The control route: `PUT /_sandbox/portals/{p}/company-currency`
/// `{"currency": "EUR"}` (`null`: none).
pub(crate) fn control_routes() -> Router<FakeHubSpot> {
    Router::new().route(
        "/_sandbox/portals/{portal}/company-currency",
        put(set_currency),
    )
}

#[derive(Deserialize)]
struct CurrencyBody {
    currency: Option<String>,
}

async fn set_currency(
    State(hub): State<FakeHubSpot>,
    Path(portal): Path<u64>,
    Json(body): Json<CurrencyBody>,
) -> Response {
    match hub.set_company_currency(portal, body.currency.as_deref()) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => (StatusCode::NOT_FOUND, Json(json!({"error": e.to_string()}))).into_response(),
    }
}

/// HubSpot's answer (its reference marks every field required; a portal set
/// to no currency answers without `companyCurrency`, the case a client must
/// survive).
async fn details(State(hub): State<FakeHubSpot>, Extension(caller): Extension<Caller>) -> Response {
    let mut portals = lock(&hub.state.portals);
    let Some(portal) = portals.get_mut(&caller.portal) else {
        return errors::not_found(&caller.portal.to_string());
    };
    portal.account_info_reads += 1;
    let mut body = json!({
        "portalId": portal.id,
        "accountType": "STANDARD",
        "timeZone": "US/Eastern",
        "additionalCurrencies": [],
        "utcOffset": "-05:00",
        "utcOffsetMilliseconds": -18_000_000,
        "uiDomain": "app.hubspot.com",
        "dataHostingLocation": "na1",
    });
    if let Some(c) = &portal.company_currency {
        body["companyCurrency"] = json!(c);
    }
    Json(body).into_response()
}

impl FakeHubSpot {
    /// Sets the portal's company currency (`None`: the account information
    /// carries none).
    pub fn set_company_currency(&self, portal: u64, currency: Option<&str>) -> anyhow::Result<()> {
        self.with_portal(portal, |p| p.company_currency = currency.map(str::to_owned))
    }

    /// How many times the portal's account information was read.
    pub fn account_info_reads(&self, portal: u64) -> u64 {
        lock(&self.state.portals)
            .get(&portal)
            .map_or(0, |p| p.account_info_reads)
    }
}
