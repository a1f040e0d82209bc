//! The Properties API: `GET /crm/v3/properties/{type}`, what the website's
//! trigger and mapping pickers offer.

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::{HubSpotClient, HubSpotError};
use domain::object_type::ObjectType;

/// One property of an object type.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PropertyInfo {
    /// Internal name (`dealstage`).
    pub name: String,
    /// Label shown in HubSpot (`Deal Stage`).
    #[serde(default)]
    pub label: String,
    /// Value type (`string`, `number`, `datetime`, `enumeration`, ...).
    #[serde(default, rename = "type")]
    pub kind: String,
    /// True for HubSpot's own properties; false for custom ones.
    #[serde(default)]
    pub hubspot_defined: bool,
}

impl HubSpotClient {
    /// Every property of `ty`, sorted by name.
    pub async fn properties(
        &self,
        token: &SecretString,
        ty: ObjectType,
    ) -> Result<Vec<PropertyInfo>, HubSpotError> {
        #[derive(Deserialize)]
        struct Answer {
            #[serde(default)]
            results: Vec<PropertyInfo>,
        }
        let req = self
            .http
            .get(self.url(&format!("crm/v3/properties/{}", ty.as_str())));
        let mut a: Answer = self.send_json(token, req, "properties").await?;
        a.results.sort_by(|x, y| x.name.cmp(&y.name));
        Ok(a.results)
    }
}
