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

mod event;

use serde_json::value::RawValue;

use super::PortalId;
pub use event::{MAX_EVENT_DEPTH, pipeline_reads};
use event::{Names, Probe, check, probe};

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

#[cfg(test)]
#[path = "delivery_tests.rs"]
mod tests;
