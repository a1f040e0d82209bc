//! impact.com's minimum for an accepted conversion (see docs/src/reference/impact.md):
//! `CampaignId`, an event type, `EventDate`, `OrderId` and an attribution key.

use super::{ATTRIBUTION_FIELDS, Conversion, EVENT_TYPE_FIELDS, MappingError};

/// Checks the minimum; `empty` lists mapped fields whose source was empty
/// (field, why), so a missing field's error says which mapping came up empty.
pub(super) fn validate(
    params: Vec<(String, String)>,
    notes: Vec<String>,
    empty: &[(String, String)],
) -> Result<Conversion, MappingError> {
    let get = |name: &str| {
        params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    let missing = |fields: &[&str]| {
        let detail = empty
            .iter()
            .find(|(f, _)| fields.contains(&f.as_str()))
            .map(|(f, why)| format!("mapped to {f} but {why}"))
            .unwrap_or_else(|| {
                if fields.len() == 1 {
                    format!("no mapping targets {}", fields[0])
                } else {
                    format!("no mapping targets any of {}", fields.join(", "))
                }
            });
        MappingError::Missing {
            field: fields.join("|"),
            detail,
        }
    };

    if get("CampaignId").is_none() {
        return Err(MappingError::Missing {
            field: "CampaignId".into(),
            detail: "set the portal's impact.program_id or map CampaignId".into(),
        });
    }
    let event_type = EVENT_TYPE_FIELDS
        .iter()
        .find_map(|f| get(f))
        .ok_or_else(|| missing(&EVENT_TYPE_FIELDS))?;
    get("EventDate").ok_or_else(|| missing(&["EventDate"]))?;
    let order_id = get("OrderId").ok_or_else(|| missing(&["OrderId"]))?;
    if !ATTRIBUTION_FIELDS.iter().any(|f| get(f).is_some()) {
        return Err(missing(&ATTRIBUTION_FIELDS));
    }
    for (name, _) in &params {
        if let Some(i) = name.strip_prefix("ItemPrice")
            && get(&format!("ItemSubTotal{i}")).is_some()
        {
            return Err(MappingError::Invalid {
                field: name.clone(),
                problem: format!("ItemPrice{i} and ItemSubTotal{i} must not be sent together"),
            });
        }
    }
    Ok(Conversion {
        params,
        event_type,
        order_id,
        notes,
    })
}
