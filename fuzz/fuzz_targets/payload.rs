//! Webhook payload parsing: never panics, every event of an accepted body
//! is accounted for, and whatever ingest queues the worker can decode (one
//! event per queued event, same portal).
#![no_main]

use libfuzzer_sys::fuzz_target;
use domain::events::{decode_message, parse_delivery};

fuzz_target!(|data: &[u8]| {
    let Ok(delivery) = parse_delivery(data, 100) else {
        return;
    };
    assert!(
        delivery.queued() + delivery.invalid.len() + delivery.ignored.len() > 0,
        "an accepted body has events"
    );
    for b in delivery.batches {
        let events = decode_message(&b.body).expect("the worker decodes what ingest queued");
        assert_eq!(events.len(), b.events, "event count survives the queue");
        assert!(events.iter().all(|e| e.portal_id == b.portal_id), "grouped by portal");
    }
    for bad in delivery.invalid {
        let kept: serde_json::Value =
            serde_json::from_slice(&bad.body).expect("an invalid event is kept as JSON");
        assert!(kept.is_array(), "kept as a one-event array");
    }
});
