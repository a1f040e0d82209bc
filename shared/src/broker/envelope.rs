//! The headers of a queued message, in one place: [`Envelope`] is what they
//! say, written by ingest and the worker's retries, read by the worker.

use lapin::types::{AMQPValue, FieldTable};

/// Message header carrying our own attempt count (we do not rely on `x-death`).
pub const ATTEMPT_HEADER: &str = "x-connector-attempt";
/// Message header naming the portal of every event in the message.
pub const PORTAL_HEADER: &str = "x-portal-id";
/// Message header with the number of events in the message.
pub const EVENT_COUNT_HEADER: &str = "x-event-count";
/// Message header with the epoch milliseconds at which ingest accepted the webhook.
pub const RECEIVED_AT_HEADER: &str = "x-received-at-ms";
/// Message header counting how often a message was deferred (informational).
pub const DEFERRED_HEADER: &str = "x-connector-deferred";
/// Message header of an event ingest could not read, sent straight to the
/// dead queue: what is wrong with it.
pub const INVALID_HEADER: &str = "x-connector-invalid";
/// RabbitMQ's count of deliveries of a quorum queue's message.
const DELIVERY_COUNT_HEADER: &str = "x-delivery-count";
/// RabbitMQ's reason for the first dead-lettering of a message.
const FIRST_DEATH_REASON_HEADER: &str = "x-first-death-reason";
/// RabbitMQ's history of dead-letterings.
const DEATH_HEADER: &str = "x-death";

/// What a queued message's headers say. Ours are written by
/// [`Envelope::write`]; RabbitMQ's (`delivery_count`, `death_reason`) are
/// only read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Envelope {
    /// The portal of every event in the message (ingest).
    pub portal: Option<u64>,
    /// The number of events in the message (ingest).
    pub event_count: Option<u64>,
    /// When ingest accepted the webhook (epoch milliseconds).
    pub received_at_ms: Option<u64>,
    /// Retries so far (0 on first delivery; written only when above 0).
    pub attempt: u32,
    /// Deferrals so far (written only when above 0).
    pub deferred: u32,
    /// An event ingest could not read: what is wrong with it (ingest, on
    /// messages it sends to the dead queue).
    pub invalid: Option<String>,
    /// How often the work queue delivered it (RabbitMQ, quorum queues).
    pub delivery_count: Option<u32>,
    /// Why RabbitMQ dead-lettered it first (`x-first-death-reason`, or the
    /// first `x-death` entry's reason).
    pub death_reason: Option<String>,
}

impl Envelope {
    /// Reads the headers; missing or unreadable ones are `None` (or 0).
    pub fn read(headers: Option<&FieldTable>) -> Self {
        let Some(h) = headers else {
            return Self::default();
        };
        let count = |name| {
            integer(h, name)
                .and_then(|v| u32::try_from(v).ok())
                .unwrap_or(0)
        };
        Self {
            portal: integer(h, PORTAL_HEADER),
            event_count: integer(h, EVENT_COUNT_HEADER),
            received_at_ms: integer(h, RECEIVED_AT_HEADER),
            attempt: count(ATTEMPT_HEADER),
            deferred: count(DEFERRED_HEADER),
            invalid: text(h, INVALID_HEADER),
            delivery_count: integer(h, DELIVERY_COUNT_HEADER).and_then(|v| u32::try_from(v).ok()),
            death_reason: death_reason(h),
        }
    }

    /// Writes our headers into `headers` (others are kept as they are).
    pub fn write(&self, headers: &mut FieldTable) {
        let mut put = |name: &str, value: u64| {
            let value = i64::try_from(value).unwrap_or(i64::MAX);
            headers.insert(name.into(), AMQPValue::LongLongInt(value));
        };
        if let Some(p) = self.portal {
            put(PORTAL_HEADER, p);
        }
        if let Some(n) = self.event_count {
            put(EVENT_COUNT_HEADER, n);
        }
        if let Some(at) = self.received_at_ms {
            put(RECEIVED_AT_HEADER, at);
        }
        if self.attempt > 0 {
            put(ATTEMPT_HEADER, u64::from(self.attempt));
        }
        if self.deferred > 0 {
            put(DEFERRED_HEADER, u64::from(self.deferred));
        }
        if let Some(problem) = &self.invalid {
            headers.insert(
                INVALID_HEADER.into(),
                AMQPValue::LongString(problem.as_str().into()),
            );
        }
    }

    /// Our headers alone.
    pub fn headers(&self) -> FieldTable {
        let mut headers = FieldTable::default();
        self.write(&mut headers);
        headers
    }
}

/// A header holding a non-negative integer, in any integer or text form.
fn integer(h: &FieldTable, name: &str) -> Option<u64> {
    match h.inner().get(name)? {
        AMQPValue::LongLongInt(v) => u64::try_from(*v).ok(),
        AMQPValue::LongInt(v) => u64::try_from(*v).ok(),
        AMQPValue::LongUInt(v) => Some(u64::from(*v)),
        AMQPValue::ShortInt(v) => u64::try_from(*v).ok(),
        AMQPValue::ShortUInt(v) => Some(u64::from(*v)),
        AMQPValue::LongString(s) => std::str::from_utf8(s.as_bytes()).ok()?.parse().ok(),
        AMQPValue::ShortString(s) => s.as_str().parse().ok(),
        _ => None,
    }
}

/// A text header.
fn text(h: &FieldTable, name: &str) -> Option<String> {
    match h.inner().get(name)? {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_owned()),
        _ => None,
    }
}

/// `x-first-death-reason`, or the first `x-death` entry's reason.
fn death_reason(h: &FieldTable) -> Option<String> {
    let h = h.inner();
    if let Some(AMQPValue::LongString(s)) = h.get(FIRST_DEATH_REASON_HEADER) {
        return Some(String::from_utf8_lossy(s.as_bytes()).into_owned());
    }
    let AMQPValue::FieldArray(deaths) = h.get(DEATH_HEADER)? else {
        return None;
    };
    let AMQPValue::FieldTable(first) = deaths.as_slice().first()? else {
        return None;
    };
    match first.inner().get("reason")? {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_read_in_any_integer_or_text_form() {
        let mut h = FieldTable::default();
        h.insert(
            RECEIVED_AT_HEADER.into(),
            AMQPValue::LongLongInt(1_700_000_000_000),
        );
        h.insert(ATTEMPT_HEADER.into(), AMQPValue::LongString("2".into()));
        h.insert(PORTAL_HEADER.into(), AMQPValue::LongUInt(7));
        let e = Envelope::read(Some(&h));
        assert_eq!(e.received_at_ms, Some(1_700_000_000_000));
        assert_eq!((e.attempt, e.portal), (2, Some(7)));
        assert_eq!(Envelope::read(None), Envelope::default());
    }

    #[test]
    fn what_is_written_is_read_back_and_other_headers_are_kept() {
        let mut h = FieldTable::default();
        h.insert("x-other".into(), AMQPValue::LongLongInt(1));
        let e = Envelope {
            portal: Some(42),
            event_count: Some(3),
            received_at_ms: Some(5),
            attempt: 1,
            deferred: 2,
            invalid: Some("missing field `objectId`".into()),
            ..Envelope::default()
        };
        e.write(&mut h);
        assert_eq!(Envelope::read(Some(&h)), e);
        assert!(h.inner().contains_key("x-other"));
        // Nothing said, nothing written: a first attempt has no attempt header.
        assert!(Envelope::default().headers().inner().is_empty());
    }
}
