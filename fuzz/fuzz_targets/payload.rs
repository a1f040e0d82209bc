//! Webhook payload parsing: never panics, and whatever ingest accepts the
//! worker can decode (one event per accepted event, same portal).
#![no_main]

use libfuzzer_sys::fuzz_target;
use domain::events::{decode_message, parse_delivery};

fuzz_target!(|data: &[u8]| {
    let Ok(batches) = parse_delivery(data, 100) else {
        return;
    };
    assert!(!batches.is_empty(), "an accepted body has events");
    for b in batches {
        let events = decode_message(&b.body).expect("the worker decodes what ingest accepted");
        assert_eq!(events.len(), b.events, "event count survives the queue");
        assert!(events.iter().all(|e| e.portal_id == b.portal_id), "grouped by portal");
    }
});
