//! Feeds arbitrary bytes to the bounded JSON reader and the JSON-LD binding.
//!
//! Run with `cargo +nightly fuzz run json_document` from `services/epcis`. No input may
//! panic or overflow the stack; a refusal for depth names the limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tracery_epcis::{EpcisError, bounds, json};

fuzz_target!(|data: &[u8]| {
    let bounds = bounds::Bounds::with_depth(12);
    match bounds::parse_json(data, &bounds) {
        Ok(value) => {
            if let Ok(document) = json::document_from_value(value) {
                let written = json::document_to_json(&document);
                let again = json::document_from_value(written).expect("written document reads");
                assert_eq!(again.events.len(), document.events.len());
            }
        }
        Err(EpcisError::OverLimit(reason)) => assert!(reason.contains("max_nesting_depth")),
        Err(_) => {}
    }
});
