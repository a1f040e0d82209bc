//! A message body held while its message waits for a slot.
//!
//! A worker holds up to its prefetch of messages (1,024 by default), most of
//! them waiting for their portal's turn (`super::fair`); each is a webhook
//! batch of up to 100 events, ~24 KB of JSON. Held as they arrive they were
//! the largest part of a busy worker's memory. A waiting body is kept
//! LZ4-compressed (a batch of one portal's events repeats its keys and
//! most of its values: ~5× smaller) and restored when the message starts;
//! compressing and restoring one takes tens of microseconds, far less than
//! processing it. A message that starts at once is never compressed.

use std::{
    cell::RefCell,
    sync::atomic::{AtomicU64, Ordering},
};

/// A message body, compressed or as it came.
#[derive(Debug)]
pub struct HeldBody {
    bytes: Vec<u8>,
    /// The original length when `bytes` is compressed.
    original_len: Option<usize>,
}

/// Bodies shorter than this are kept as they are (a message of one event
/// gains little).
pub const COMPRESS_FROM: usize = 1024;

static COMPRESSED: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// The encoder's output buffer (sized for the worst case), reused, so
    /// each held body is allocated once at its compressed size.
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Bodies held compressed by this process so far (also the
/// `worker_messages_held_compressed_total` counter).
pub fn compressed_total() -> u64 {
    COMPRESSED.load(Ordering::Relaxed)
}

impl HeldBody {
    /// Holds `body`, compressed when that makes it smaller.
    pub fn hold(body: Vec<u8>) -> Self {
        if body.len() < COMPRESS_FROM {
            return Self::raw(body);
        }
        let packed = SCRATCH.with_borrow_mut(|scratch| {
            scratch.resize(lz4_flex::block::get_maximum_output_size(body.len()), 0);
            let n = lz4_flex::block::compress_into(&body, scratch).ok()?;
            (n < body.len()).then(|| scratch[..n].to_vec())
        });
        let Some(packed) = packed else {
            return Self::raw(body);
        };
        COMPRESSED.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("worker_messages_held_compressed_total").increment(1);
        Self {
            original_len: Some(body.len()),
            bytes: packed,
        }
    }

    fn raw(body: Vec<u8>) -> Self {
        Self {
            bytes: body,
            original_len: None,
        }
    }

    /// Bytes held now.
    pub fn held_len(&self) -> usize {
        self.bytes.len()
    }

    /// The body as it came. An error would be a bug (it is our own output,
    /// of the recorded length): the caller returns the message to the
    /// broker, which still has it as it came.
    pub fn restore(self) -> Result<Vec<u8>, lz4_flex::block::DecompressError> {
        match self.original_len {
            None => Ok(self.bytes),
            Some(len) => lz4_flex::block::decompress(&self.bytes, len),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn batch(events: u64) -> Vec<u8> {
        let events: Vec<serde_json::Value> = (0..events)
            .map(|i| {
                serde_json::json!({
                    "eventId": 3_000_000_000u64 + i * 7919,
                    "subscriptionId": 2_140_113,
                    "portalId": 62_515,
                    "appId": 1_160_452,
                    "occurredAt": 1_764_287_000_000u64 + i * 13,
                    "subscriptionType": "contact.creation",
                    "attemptNumber": 0,
                    "objectId": 90_000 + i,
                    "changeFlag": "CREATED",
                    "changeSource": "IMPORT",
                    "sourceId": "userId:18443"
                })
            })
            .collect();
        serde_json::to_vec(&events).expect("serialises")
    }

    #[test]
    fn a_webhook_batch_is_held_compressed_and_restored_exactly() {
        let body = batch(100);
        let before = compressed_total();
        let held = HeldBody::hold(body.clone());
        assert!(compressed_total() > before, "counted");
        assert!(
            held.held_len() * 4 < body.len(),
            "{} bytes held for {}",
            held.held_len(),
            body.len()
        );
        assert_eq!(held.restore().expect("restores"), body);
    }

    #[test]
    fn a_short_body_is_held_as_it_came() {
        let body = batch(1);
        assert!(body.len() < COMPRESS_FROM);
        let held = HeldBody::hold(body.clone());
        assert_eq!(held.held_len(), body.len());
        assert_eq!(held.restore().expect("restores"), body);
    }

    proptest! {
        #[test]
        fn any_body_is_restored_exactly(body in proptest::collection::vec(any::<u8>(), 0..5000)) {
            let held = HeldBody::hold(body.clone());
            prop_assert!(held.held_len() <= body.len());
            prop_assert_eq!(held.restore().expect("restores"), body);
        }
    }
}
