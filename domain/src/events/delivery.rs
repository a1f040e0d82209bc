//! A delivery's body as ingest reads it. Only a body that is not a JSON
//! array of objects is refused as a whole; each event is then on its own:
//!
//! - readable: queued byte for byte, grouped by portal (whatever its kind:
//!   the worker ignores kinds no trigger uses);
//! - unreadable, of a kind the pipeline has no use for (an association
//!   change, which carries `fromObjectId`/`toObjectId` instead of
//!   `objectId`; a type it does not know): ignored;
//! - unreadable, of a kind the pipeline reads (or of no kind at all):
//!   kept as an [`InvalidEvent`], which ingest hands to the dead-letter store.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::{Value, value::RawValue};

use super::PortalId;

/// Why a webhook body was refused as a whole; the message names the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    /// Not parseable JSON.
    #[error("body is not valid JSON: {0}")]
    NotJson(String),
    /// JSON, but not an array of events.
    #[error("body must be a JSON array of events")]
    NotArray,
    /// `[]`.
    #[error("body is an empty array: at least one event is required")]
    Empty,
    /// More events than allowed in one request.
    #[error("too many events in one request: {count} (at most {limit})")]
    TooMany {
        /// Events received.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// An element of the array is not a JSON object.
    #[error("event {index}: {problem}")]
    BadEvent {
        /// Zero-based position in the array.
        index: usize,
        /// What is wrong.
        problem: String,
    },
}

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

/// The events of one portal from one delivery, ready to enqueue: `body` is a
/// JSON array of the events' original bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortalBatch {
    /// The portal all these events belong to.
    pub portal_id: PortalId,
    /// Number of events.
    pub events: usize,
    /// `[event,event,...]`, each event byte-for-byte as received.
    pub body: Vec<u8>,
}

/// Why an unreadable event was left out without being kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IgnoredEvent {
    /// `*.associationChange`: the pipeline does not follow associations.
    AssociationChange,
    /// A subscription type the pipeline does not read.
    UnknownType,
}

impl IgnoredEvent {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AssociationChange => "association_change",
            Self::UnknownType => "unknown_type",
        }
    }
}

/// An event of a kind the pipeline reads that cannot be read (e.g. a
/// non-numeric `objectId`), kept for operators as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidEvent {
    /// Zero-based position in the delivery.
    pub index: usize,
    /// Its portal, when `portalId` is a number.
    pub portal_id: Option<PortalId>,
    /// What is wrong, e.g. "`objectId` must be a non-negative integer, not \"abc\"".
    pub problem: String,
    /// `[event]`, the event byte for byte as received.
    pub body: Vec<u8>,
}

/// A delivery read event by event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedDelivery {
    /// Readable events, grouped by portal in order of first appearance.
    pub batches: Vec<PortalBatch>,
    /// Unreadable events of kinds the pipeline reads.
    pub invalid: Vec<InvalidEvent>,
    /// Unreadable events of kinds it has no use for.
    pub ignored: Vec<IgnoredEvent>,
}

impl ParsedDelivery {
    /// Readable events (the ones queued for the worker).
    pub fn queued(&self) -> usize {
        self.batches.iter().map(|b| b.events).sum()
    }

    fn push(&mut self, portal: PortalId, raw: &str) {
        let batch = match self.batches.iter().position(|b| b.portal_id == portal) {
            Some(i) => &mut self.batches[i],
            None => {
                self.batches.push(PortalBatch {
                    portal_id: portal,
                    events: 0,
                    body: vec![b'['],
                });
                let last = self.batches.len() - 1;
                &mut self.batches[last]
            }
        };
        if batch.events > 0 {
            batch.body.push(b',');
        }
        batch.body.extend_from_slice(raw.as_bytes());
        batch.events += 1;
    }
}

/// A body read event by event, not trusted yet (its signature is checked
/// with the key of [`ReadDelivery::portal`]); [`ReadDelivery::finish`]
/// groups it once it is.
#[derive(Debug)]
pub struct ReadDelivery<'a> {
    events: Vec<Read<'a>>,
    portal: Option<PortalId>,
}

/// One event as read.
#[derive(Debug)]
enum Read<'a> {
    Valid(PortalId, &'a str),
    Ignored(IgnoredEvent),
    Invalid(Option<PortalId>, String, &'a str),
}

/// What an event says its portal is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Names {
    /// No `portalId` (or `null`).
    Nothing,
    /// A number.
    Portal(PortalId),
    /// Something that is not a portal id.
    Unreadable,
}

impl<'a> ReadDelivery<'a> {
    /// The one portal every event that names a portal names, when none
    /// names another or something that is not a portal id: the portal whose
    /// own webhook secret (if any) must have signed the delivery. Whatever
    /// is queued or kept then belongs to it (or to no portal).
    pub fn portal(&self) -> Option<PortalId> {
        self.portal
    }

    /// The events, grouped: readable ones per portal, the others aside.
    pub fn finish(self) -> ParsedDelivery {
        let mut out = ParsedDelivery::default();
        for (index, e) in self.events.into_iter().enumerate() {
            match e {
                Read::Valid(portal, raw) => out.push(portal, raw),
                Read::Ignored(why) => out.ignored.push(why),
                Read::Invalid(portal_id, problem, raw) => out.invalid.push(InvalidEvent {
                    index,
                    portal_id,
                    problem,
                    body: format!("[{raw}]").into_bytes(),
                }),
            }
        }
        for b in &mut out.batches {
            b.body.push(b']');
        }
        out
    }
}

/// Reads a webhook body: refused as a whole only when it is not a
/// non-empty JSON array of at most `max_events` objects; otherwise each
/// event is readable, ignored or invalid (see the module documentation).
pub fn read_delivery(body: &[u8], max_events: usize) -> Result<ReadDelivery<'_>, PayloadError> {
    let value: &RawValue =
        serde_json::from_slice(body).map_err(|e| PayloadError::NotJson(e.to_string()))?;
    if !value.get().trim_start().starts_with('[') {
        return Err(PayloadError::NotArray);
    }
    let items: Vec<&RawValue> =
        serde_json::from_str(value.get()).map_err(|e| PayloadError::NotJson(e.to_string()))?;
    if items.is_empty() {
        return Err(PayloadError::Empty);
    }
    if items.len() > max_events {
        return Err(PayloadError::TooMany {
            count: items.len(),
            limit: max_events,
        });
    }
    if let Some(index) = items.iter().position(|raw| !raw.get().starts_with('{')) {
        return Err(PayloadError::BadEvent {
            index,
            problem: "must be a JSON object".into(),
        });
    }
    let mut events = Vec::with_capacity(items.len());
    // `Some(None)`: no single portal.
    let mut portal: Option<Option<PortalId>> = None;
    let mut note = |names: Names| {
        let p = match names {
            Names::Nothing => return,
            Names::Portal(p) => Some(p),
            Names::Unreadable => None,
        };
        portal = match portal {
            None => Some(p),
            Some(seen) if seen == p => Some(seen),
            Some(_) => Some(None),
        };
    };
    for raw in items {
        let raw = raw.get();
        let read = match check(raw) {
            Ok(p) => {
                note(Names::Portal(p));
                Read::Valid(p, raw)
            }
            Err(problem) => {
                let (names, probed) = probe(raw);
                note(names);
                match probed {
                    Probe::Ignore(why) => Read::Ignored(why),
                    Probe::Keep(by_field) => {
                        let portal_id = match names {
                            Names::Portal(p) => Some(p),
                            _ => None,
                        };
                        Read::Invalid(portal_id, by_field.unwrap_or(problem), raw)
                    }
                }
            }
        };
        events.push(read);
    }
    Ok(ReadDelivery {
        events,
        portal: portal.flatten(),
    })
}

/// [`read_delivery`], grouped at once (for a body whose signature holds).
/// HubSpot sends one portal per request, but nothing is lost if a request
/// mixes them.
pub fn parse_delivery(body: &[u8], max_events: usize) -> Result<ParsedDelivery, PayloadError> {
    read_delivery(body, max_events).map(ReadDelivery::finish)
}

/// A readable event's portal, or what is wrong with it.
fn check(raw: &str) -> Result<PortalId, String> {
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
enum Probe {
    /// Its kind is of no use to the pipeline.
    Ignore(IgnoredEvent),
    /// Keep it, with what is wrong by field (when that is the problem).
    Keep(Option<String>),
}

/// Reads what it can of an unreadable event: the portal it names, its
/// kind, and which field is wrong.
fn probe(raw: &str) -> (Names, Probe) {
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

#[cfg(test)]
#[path = "delivery_tests.rs"]
mod tests;
