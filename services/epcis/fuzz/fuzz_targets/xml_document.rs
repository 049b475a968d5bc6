//! Feeds arbitrary bytes to the EPCIS XML reader, within tight bounds so that deep and wide
//! documents are reached quickly.
//!
//! Run with `cargo +nightly fuzz run xml_document` from `services/epcis` (or
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run xml_document` on stable). Whatever the input, the
//! reader answers with a document or an error: no panic, no stack overflow, and a refusal
//! for depth or width names the limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tracery_epcis::{EpcisError, bounds::Bounds, json, xml};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let bounds = Bounds {
        max_depth: 12,
        max_attributes: 8,
        max_namespaces: 8,
    };
    match xml::document_json(text, &bounds) {
        Ok(value) => {
            // What the reader built is within the bound and reads on as JSON-LD does.
            let _ = json::document_from_value(value);
        }
        Err(EpcisError::OverLimit(reason)) => assert!(reason.contains("XML"), "{reason}"),
        Err(_) => {}
    }
});
