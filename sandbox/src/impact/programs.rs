//! `GET /Advertisers/{SID}/Campaigns/{ProgramId}`: one program of the
//! account (impact.com's program object; values as strings, as impact.com
//! writes them). 200 only when the SID, token and program belong together:
//! 401 for credentials the fake does not know, 403 for another account's
//! SID, 404 for a program the account does not have.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::json;

use super::FakeImpact;
use super::reads::{ReadKind, answer, gate};
use crate::lock;

pub(crate) async fn program(
    State(imp): State<FakeImpact>,
    Path((sid, program_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let g = match gate(&imp, &headers, &sid, ReadKind::Program) {
        Ok(g) => g,
        Err(resp) => return *resp,
    };
    let known = lock(&imp.state.accounts)
        .iter()
        .any(|a| a.account_sid == sid && a.program_ids.contains(&program_id));
    if !known {
        let body = json!({"Status": "ERROR", "Message": format!("Program {program_id} not found")});
        return answer(
            &imp,
            ReadKind::Program,
            &sid,
            &g,
            StatusCode::NOT_FOUND,
            body,
        );
    }
    let body = json!({
        "Id": program_id,
        "Name": format!("Sandbox program {program_id}"),
        "State": "ACTIVE",
        "Type": "Performance",
        "Categories": {
            "PrimaryCategory": "B2B, Services & Office Supplies",
            "PrimarySubCategories": ["B2B"],
            "AdditionalCategory": "",
            "AdditionalSubCategories": []
        },
        "ShortDescription": "A program of the impact.com sandbox.",
        "LongDescription": "",
        "ListInMarketplace": "false",
        "DisplayServicingAgency": "false",
        "Rating": "0",
        "SearchKeywords": "",
        "ShippingRegions": [],
        "Resources": {
            "CompanyHomepage": "",
            "ExampleLandingPage": "",
            "InformationPage": "",
            "AdditionalRelatedLinks": []
        },
        "CompanyContacts": [],
        "PromoCodeTracking": "false",
        "TrackingDomain": "sandbox.example",
        "Uri": format!("/Advertisers/{sid}/Campaigns/{program_id}"),
    });
    answer(&imp, ReadKind::Program, &sid, &g, StatusCode::OK, body)
}
