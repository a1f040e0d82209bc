//! Reversals and modifications, edited per object type on the Event
//! Triggers page, next to the triggers (docs/src/adjustments.md).
//! The form's text fields round-trip the document's `adjustments.<type>`.

use domain::adjustments::{
    DEFAULT_DISPOSITION_CODE, DEFAULT_MODIFY_REASON, IMPACT_DISPOSITION_CODES, ObjectAdjustments,
};

use super::super::*;

/// One object type's rules as the form shows them.
#[derive(Debug, Default, PartialEq, Eq, Serialize)]
pub(super) struct AdjustForm {
    /// One line per rule: `property: value, value`.
    reverse_when: String,
    reverse_on_delete: bool,
    disposition_code: String,
    /// Comma-separated property names.
    modify_on_change: String,
    modify_reason: String,
    amount_from: String,
    /// One line per event type: `EventTypeCode: ActionTrackerId`.
    action_tracker_ids: String,
    default_disposition: &'static str,
    /// impact.com's own disposition codes, offered in the form.
    disposition_codes: &'static [&'static str],
    default_reason: &'static str,
}

/// The form of stored rules.
pub(super) fn form_of(a: &ObjectAdjustments) -> AdjustForm {
    AdjustForm {
        reverse_when: a
            .reverse_when
            .iter()
            .map(|r| {
                let values = r.only_values.clone().unwrap_or_default().join(", ");
                format!("{}: {values}", r.property)
            })
            .collect::<Vec<_>>()
            .join("\n"),
        reverse_on_delete: a.reverse_on_delete,
        disposition_code: a.disposition_code.clone().unwrap_or_default(),
        modify_on_change: a.modify_on_change.join(", "),
        modify_reason: a.modify_reason.clone().unwrap_or_default(),
        amount_from: a.amount_from.clone().unwrap_or_default(),
        action_tracker_ids: a
            .action_tracker_ids
            .iter()
            .map(|(code, id)| format!("{code}: {id}"))
            .collect::<Vec<_>>()
            .join("\n"),
        default_disposition: DEFAULT_DISPOSITION_CODE,
        disposition_codes: &IMPACT_DISPOSITION_CODES,
        default_reason: DEFAULT_MODIFY_REASON,
    }
}

fn list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn optional(f: &Fields, key: &str) -> Option<String> {
    f.get(key)
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// Rules from the submitted form; syntax problems are named by field (the
/// document's validation names the rest).
pub(super) fn parse_form(f: &Fields) -> Result<ObjectAdjustments, Vec<String>> {
    let mut errors = vec![];
    let mut rules = ObjectAdjustments {
        reverse_on_delete: f
            .get("reverse_on_delete")
            .is_some_and(|v| v == "true" || v == "on"),
        disposition_code: optional(f, "disposition_code"),
        modify_on_change: list(f.get("modify_on_change").map_or("", String::as_str)),
        modify_reason: optional(f, "modify_reason"),
        amount_from: optional(f, "amount_from"),
        ..ObjectAdjustments::default()
    };
    let lines = |key: &str| -> Vec<String> {
        f.get(key)
            .map(|t| {
                t.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    for line in lines("reverse_when") {
        match line.split_once(':') {
            Some((property, values)) => rules.reverse_when.push(PropertyTrigger {
                property: property.trim().to_owned(),
                only_values: Some(list(values)),
            }),
            None => errors.push(format!(
                "Reverse when: write \"property: value, value\" (e.g. \"dealstage: closedlost\"), not {line:?}"
            )),
        }
    }
    for line in lines("action_tracker_ids") {
        let parsed = line
            .rsplit_once(':')
            .and_then(|(code, id)| Some((code.trim().to_owned(), id.trim().parse::<u64>().ok()?)));
        match parsed {
            Some((code, id)) => {
                rules.action_tracker_ids.insert(code, id);
            }
            None => errors.push(format!(
                "Action tracker ids: write \"EventTypeCode: id\" (e.g. \"Closed Won: 5001\"), not {line:?}"
            )),
        }
    }
    if errors.is_empty() {
        Ok(rules)
    } else {
        Err(errors)
    }
}

/// `POST /triggers/adjustments` (`object_type` and the rule fields).
pub async fn save_adjustments(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<Fields>,
) -> Response {
    let (site, portal, csrf, actor) = checked_or_return!(state, headers, f);
    let result = async {
        let ty = object_type(&f)?;
        let rules = parse_form(&f).map_err(OpError::Invalid)?;
        let by = super::super::edit(&actor, &f)?;
        let mut all = ops::view(&site, portal).await?.adjustments;
        all.insert(ty, rules);
        ops::save_adjustments(&site, portal, all, by).await
    }
    .await;
    super::triggers_page(
        &site,
        portal,
        &csrf,
        Outcome::of(result, "Reversal and modification rules saved."),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_round_trips_rules() {
        let rules: ObjectAdjustments = serde_json::from_value(serde_json::json!({
            "reverse_when": [{ "property": "dealstage", "values": ["closedlost", "cancelled"] }],
            "reverse_on_delete": true,
            "modify_on_change": ["amount", "hs_tcv"],
            "modify_reason": "PRICE_CHANGE",
            "action_tracker_ids": { "Closed Won": 5001 }
        }))
        .expect("rules");
        let form = form_of(&rules);
        let fields: Fields = [
            ("reverse_when", form.reverse_when.clone()),
            ("reverse_on_delete", "on".to_owned()),
            ("disposition_code", form.disposition_code.clone()),
            ("modify_on_change", form.modify_on_change.clone()),
            ("modify_reason", form.modify_reason.clone()),
            ("amount_from", form.amount_from.clone()),
            ("action_tracker_ids", form.action_tracker_ids.clone()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        assert_eq!(parse_form(&fields), Ok(rules));
    }

    #[test]
    fn malformed_lines_are_named() {
        let fields: Fields = [
            ("reverse_when".to_owned(), "closedlost".to_owned()),
            ("action_tracker_ids".to_owned(), "Closed Won = 5".to_owned()),
        ]
        .into_iter()
        .collect();
        let e = parse_form(&fields).expect_err("refused");
        assert!(e[0].starts_with("Reverse when:"), "{e:?}");
        assert!(e[1].starts_with("Action tracker ids:"), "{e:?}");
    }
}
