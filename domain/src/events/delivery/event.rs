//! One event of a delivery: whether it is readable, and what can be read
//! of it when it is not (the portal it names, its kind, the wrong field).

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::Value;

use super::IgnoredEvent;
use crate::events::PortalId;

/// The fields ingest insists on, with the types HubSpot documents.
/// Borrowing keeps validation allocation-free for the common case.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // Fields exist to be type-checked.
struct EventCheck<'a> {
    event_id: Option<u64>,
    subscription_id: Option<u64>,
    portal_id: u64,
    app_id: Option<u64>,
    occurred_at: u64,
    #[serde(borrow, default)]
    subscription_type: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    event_type: Option<Cow<'a, str>>,
    attempt_number: Option<u32>,
    object_id: u64,
    #[serde(borrow, default)]
    property_name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    property_value: Option<Cow<'a, str>>,
}

/// What an event says its portal is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Names {
    /// No `portalId` (or `null`).
    Nothing,
    /// A number.
    Portal(PortalId),
    /// Something that is not a portal id.
    Unreadable,
}

/// A readable event's portal, or what is wrong with it.
pub(super) fn check(raw: &str) -> Result<PortalId, String> {
    if nesting_depth(raw) > MAX_EVENT_DEPTH {
        // The worker's decoder stops at 128 levels: keep out of the queue
        // what it could not read later.
        return Err(format!("nested deeper than {MAX_EVENT_DEPTH} levels"));
    }
    let ev: EventCheck<'_> = serde_json::from_str(raw).map_err(|e| strip_position(&e))?;
    let kind = match (&ev.subscription_type, &ev.event_type) {
        (Some(k), _) | (None, Some(k)) => k,
        (None, None) => return Err("missing field `subscriptionType`".into()),
    };
    if kind.is_empty() {
        return Err("`subscriptionType` is empty".into());
    }
    if !is_subscription_type(kind) {
        return Err(
            "`subscriptionType` must look like `object.action` (letters, digits, `_`, `-`)".into(),
        );
    }
    if ev
        .property_name
        .as_deref()
        .is_some_and(|n| !is_property_name(n))
    {
        return Err(
            "`propertyName` must be a HubSpot internal name (letters, digits, `_`, `-`, `.`; at most 200)"
                .into(),
        );
    }
    Ok(PortalId(ev.portal_id))
}

/// What to do with an unreadable event.
pub(super) enum Probe {
    /// Its kind is of no use to the pipeline.
    Ignore(IgnoredEvent),
    /// Keep it, with what is wrong by field (when that is the problem).
    Keep(Option<String>),
}

/// Reads what it can of an unreadable event: the portal it names, its
/// kind, and which field is wrong.
pub(super) fn probe(raw: &str) -> (Names, Probe) {
    let Ok(map) = serde_json::from_str::<serde_json::Map<String, Value>>(raw) else {
        return (Names::Unreadable, Probe::Keep(None));
    };
    let names = match map.get("portalId") {
        None | Some(Value::Null) => Names::Nothing,
        Some(v) => v
            .as_u64()
            .map_or(Names::Unreadable, |p| Names::Portal(PortalId(p))),
    };
    let kind = ["subscriptionType", "eventType"]
        .into_iter()
        .filter_map(|k| map.get(k))
        .find(|v| !v.is_null());
    if let Some(Value::String(k)) = kind
        && !pipeline_reads(k)
    {
        let why = if k
            .split_once('.')
            .is_some_and(|(_, a)| a == "associationChange")
        {
            IgnoredEvent::AssociationChange
        } else {
            IgnoredEvent::UnknownType
        };
        return (names, Probe::Ignore(why));
    }
    (names, Probe::Keep(field_problem(&map)))
}

/// The first required field that is missing or not a non-negative integer.
fn field_problem(map: &serde_json::Map<String, Value>) -> Option<String> {
    ["portalId", "objectId", "occurredAt"]
        .into_iter()
        .find_map(|name| match map.get(name) {
            None | Some(Value::Null) => Some(format!("missing field `{name}`")),
            Some(v) if v.as_u64().is_none() => {
                let mut shown = v.to_string();
                if shown.len() > 40 {
                    shown = format!("{}…", shown.chars().take(40).collect::<String>());
                }
                Some(format!(
                    "`{name}` must be a non-negative integer, not {shown}"
                ))
            }
            Some(_) => None,
        })
}

/// Whether the pipeline reads events of this subscription type (classic
/// `contact.*`, `company.*`, `deal.*` or generic `object.*`; creations,
/// property changes, deletions, privacy deletions, merges and restores).
pub fn pipeline_reads(kind: &str) -> bool {
    kind.split_once('.').is_some_and(|(object, action)| {
        matches!(object, "contact" | "company" | "deal" | "object")
            && matches!(
                action,
                "creation"
                    | "propertyChange"
                    | "deletion"
                    | "privacyDeletion"
                    | "merge"
                    | "restore"
            )
    })
}

/// How deep an event's JSON may nest (HubSpot's events are 1 or 2 deep).
pub const MAX_EVENT_DEPTH: usize = 32;

/// The deepest nesting of arrays and objects in valid JSON text.
pub(crate) fn nesting_depth(json: &str) -> usize {
    let (mut depth, mut max, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for b in json.bytes() {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                max = max.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// `object.action` (e.g. `contact.propertyChange`, `object.newThing`),
/// at most 100 ASCII characters: anything else (SQL, markup, control
/// characters) cannot be a HubSpot subscription type.
fn is_subscription_type(kind: &str) -> bool {
    let word = |w: &str| {
        !w.is_empty()
            && w.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    };
    kind.len() <= 100
        && kind
            .split_once('.')
            .is_some_and(|(o, a)| word(o) && word(a))
}

/// HubSpot property internal names: ASCII letters, digits, `_`, `-`, `.`.
fn is_property_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 200
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// serde_json's messages end in "at line 1 column 57", which means nothing
/// to a caller looking at one event: keep the substance only.
fn strip_position(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_owned(),
        None => msg,
    }
}
