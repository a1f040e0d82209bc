//! Associations v4 in batches: `POST /crm/v4/associations/{from}/{to}/batch/read`,
//! up to 1,000 records per call, so a webhook batch of 100 deals costs one
//! call for their line items instead of 100.

use std::collections::HashMap;

use secrecy::SecretString;
use serde::Deserialize;

use super::{Association, HubSpotClient, HubSpotError};
use domain::object_type::ObjectType;

/// Most records in one batch association read.
pub const BATCH_ASSOCIATIONS_LIMIT: usize = 1_000;

impl HubSpotClient {
    /// The associations of every record in `ids` to object type `to`, in
    /// chunks of 1,000. A record without associations (HubSpot answers 207
    /// with `NO_ASSOCIATIONS_FOUND`) maps to an empty list.
    pub async fn batch_associations(
        &self,
        token: &SecretString,
        from: ObjectType,
        to: &str,
        ids: &[u64],
    ) -> Result<HashMap<u64, Vec<Association>>, HubSpotError> {
        #[derive(Deserialize)]
        struct Batch {
            #[serde(default)]
            results: Vec<Row>,
        }
        #[derive(Deserialize)]
        struct Row {
            from: From,
            #[serde(default)]
            to: Vec<To>,
        }
        #[derive(Deserialize)]
        struct From {
            id: serde_json::Value,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct To {
            to_object_id: serde_json::Value,
            #[serde(default)]
            association_types: Vec<Kind>,
        }
        #[derive(Deserialize)]
        struct Kind {
            label: Option<String>,
        }
        fn id_of(v: &serde_json::Value) -> Option<u64> {
            match v {
                serde_json::Value::Number(n) => n.as_u64(),
                serde_json::Value::String(s) => s.parse().ok(),
                _ => None,
            }
        }
        let mut out: HashMap<u64, Vec<Association>> =
            ids.iter().map(|id| (*id, Vec::new())).collect();
        for chunk in ids.chunks(BATCH_ASSOCIATIONS_LIMIT) {
            let body = serde_json::json!({
                "inputs": chunk.iter().map(|id| serde_json::json!({"id": id.to_string()})).collect::<Vec<_>>(),
            });
            let req = self
                .http
                .post(self.url(&format!(
                    "crm/v4/associations/{}/{to}/batch/read",
                    from.as_str()
                )))
                .json(&body);
            let batch: Batch = self.send_json(token, req, "batch_associations").await?;
            for row in batch.results {
                let Some(from_id) = id_of(&row.from.id) else {
                    return Err(HubSpotError::Decode(format!(
                        "association from.id {}",
                        row.from.id
                    )));
                };
                let list = out.entry(from_id).or_default();
                for t in row.to {
                    let Some(to_object_id) = id_of(&t.to_object_id) else {
                        return Err(HubSpotError::Decode(format!(
                            "association toObjectId {}",
                            t.to_object_id
                        )));
                    };
                    list.push(Association {
                        to_object_id,
                        labels: t
                            .association_types
                            .into_iter()
                            .filter_map(|k| k.label)
                            .collect(),
                    });
                }
            }
        }
        Ok(out)
    }
}
