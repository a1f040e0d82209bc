//! Associations v4 in batches: `POST /crm/v4/associations/{from}/{to}/batch/read`,
//! up to 1,000 records per call, so a webhook batch of 100 deals costs one
//! call for their line items instead of 100.
//!
//! Each result row pages on its own: a record with more associations than
//! HubSpot puts in one row carries `paging.next.after`, and the next page
//! is asked for by sending `{"id", "after"}` as an input of the same
//! endpoint. Every row is followed to its end, so a deal with many line
//! items gets all of them.

use std::collections::HashMap;

use secrecy::SecretString;
use serde::Deserialize;

use super::{Association, HubSpotClient, HubSpotError};
use domain::object_type::ObjectType;

/// Most records in one batch association read.
pub const BATCH_ASSOCIATIONS_LIMIT: usize = 1_000;

/// Most associations read for one record (to one object type): a deal
/// with more line items than this is refused, not paged for ever.
pub const MAX_ASSOCIATIONS_PER_RECORD: usize = 10_000;

/// Most pages read for one record's associations (a page that brings
/// nothing but a new cursor still counts).
pub const MAX_ASSOCIATION_PAGES: usize = 100;

/// The refusal of a record whose associations go past the bounds.
pub(super) fn too_many(from: ObjectType, id: u64, to: &str, what: &str) -> HubSpotError {
    HubSpotError::TooLarge(format!(
        "{} {id} has more than {what} of associations to {to}; not paged further",
        from.as_str()
    ))
}

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
    paging: Option<Paging>,
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

#[derive(Deserialize)]
struct Paging {
    next: Option<Next>,
}

#[derive(Deserialize)]
struct Next {
    after: String,
}

fn id_of(v: &serde_json::Value) -> Option<u64> {
    match v {
        serde_json::Value::Number(n) => n.as_u64(),
        serde_json::Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// One input of a batch read: a record, and where its page starts.
type Input = (u64, Option<String>);

impl HubSpotClient {
    /// The associations of every record in `ids` to object type `to`, in
    /// chunks of 1,000, every row's pages followed. A record without
    /// associations (HubSpot answers 207 with `NO_ASSOCIATIONS_FOUND`) maps
    /// to an empty list.
    pub async fn batch_associations(
        &self,
        token: &SecretString,
        from: ObjectType,
        to: &str,
        ids: &[u64],
    ) -> Result<HashMap<u64, Vec<Association>>, HubSpotError> {
        let mut out: HashMap<u64, Vec<Association>> =
            ids.iter().map(|id| (*id, Vec::new())).collect();
        let mut inputs: Vec<Input> = ids.iter().map(|id| (*id, None)).collect();
        let mut pages = 0;
        while !inputs.is_empty() {
            pages += 1;
            if pages > MAX_ASSOCIATION_PAGES {
                let pages = format!("{MAX_ASSOCIATION_PAGES} pages");
                return Err(too_many(from, inputs[0].0, to, &pages));
            }
            let mut more = Vec::new();
            for chunk in inputs.chunks(BATCH_ASSOCIATIONS_LIMIT) {
                more.extend(
                    self.association_page(token, from, to, chunk, &mut out)
                        .await?,
                );
            }
            inputs = more;
        }
        Ok(out)
    }

    /// One batch read of `inputs`: their associations go to `out`; returns
    /// the inputs of the rows' next pages.
    async fn association_page(
        &self,
        token: &SecretString,
        from: ObjectType,
        to: &str,
        inputs: &[Input],
        out: &mut HashMap<u64, Vec<Association>>,
    ) -> Result<Vec<Input>, HubSpotError> {
        let body = serde_json::json!({
            "inputs": inputs.iter().map(|(id, after)| match after {
                Some(after) => serde_json::json!({"id": id.to_string(), "after": after}),
                None => serde_json::json!({"id": id.to_string()}),
            }).collect::<Vec<_>>(),
        });
        let req = self
            .http
            .post(self.url(&format!(
                "crm/v4/associations/{}/{to}/batch/read",
                from.as_str()
            )))
            .json(&body);
        let batch: Batch = self.send_json(token, req, "batch_associations").await?;
        let mut next = Vec::new();
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
            if list.len() > MAX_ASSOCIATIONS_PER_RECORD {
                let most = format!("{MAX_ASSOCIATIONS_PER_RECORD}");
                return Err(too_many(from, from_id, to, &most));
            }
            if let Some(after) = row.paging.and_then(|p| p.next).map(|n| n.after) {
                // A cursor that does not move would loop forever.
                if inputs
                    .iter()
                    .any(|(id, a)| *id == from_id && a.as_deref() == Some(&after))
                {
                    return Err(HubSpotError::Decode(format!(
                        "association paging of {from_id} repeats cursor {after}"
                    )));
                }
                next.push((from_id, Some(after)));
            }
        }
        Ok(next)
    }
}
