//! HubSpot's account information: the portal's company currency, the
//! `CurrencyCode` of conversions whose object has no currency of its own.
//!
//! `GET /account-info/v3/details` (scope `oauth`, which every install
//! grants) answers `{"portalId", "accountType", "timeZone",
//! "companyCurrency", "additionalCurrencies", "utcOffset",
//! "utcOffsetMilliseconds", "uiDomain", "dataHostingLocation"}`.

use secrecy::SecretString;
use serde::Deserialize;

use super::{HubSpotClient, HubSpotError};

/// What the connector reads of a portal's account information.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountDetails {
    /// The portal (hub) id.
    #[serde(default)]
    pub portal_id: Option<u64>,
    /// The company currency (ISO-4217), e.g. `USD`; `None` when absent or empty.
    #[serde(default, deserialize_with = "non_empty")]
    pub company_currency: Option<String>,
}

fn non_empty<'de, D: serde::Deserializer<'de>>(de: D) -> Result<Option<String>, D::Error> {
    let v: Option<String> = Option::deserialize(de)?;
    Ok(v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()))
}

impl HubSpotClient {
    /// `GET /account-info/v3/details`.
    pub async fn account_details(
        &self,
        token: &SecretString,
    ) -> Result<AccountDetails, HubSpotError> {
        let req = self.http.get(self.url("account-info/v3/details"));
        self.send_json(token, req, "account_info").await
    }

    /// The portal's company currency: `Ok(None)` when HubSpot reports none
    /// or refuses the read for good (e.g. 403, a token without the scope);
    /// transient failures and a refused token (401) are errors, retried.
    pub async fn company_currency(
        &self,
        token: &SecretString,
    ) -> Result<Option<String>, HubSpotError> {
        match self.account_details(token).await {
            Ok(details) => Ok(details.company_currency),
            Err(HubSpotError::Rejected { status, .. }) => {
                tracing::warn!(
                    status,
                    "HubSpot refused the account information read: no company currency"
                );
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_documented_answer() {
        let d: AccountDetails = serde_json::from_str(
            r#"{"portalId": 62515, "accountType": "STANDARD", "timeZone": "US/Eastern",
                "companyCurrency": "EUR", "additionalCurrencies": ["USD"],
                "utcOffset": "-05:00", "utcOffsetMilliseconds": -18000000,
                "uiDomain": "app.hubspot.com", "dataHostingLocation": "na1"}"#,
        )
        .expect("decodes");
        assert_eq!(d.portal_id, Some(62515));
        assert_eq!(d.company_currency.as_deref(), Some("EUR"));
        let d: AccountDetails =
            serde_json::from_str(r#"{"companyCurrency": " "}"#).expect("decodes");
        assert_eq!(d.company_currency, None);
        let d: AccountDetails = serde_json::from_str("{}").expect("decodes");
        assert_eq!(d.company_currency, None);
    }
}
