//! Feeds arbitrary text to the element-string, Digital Link and EPC URN parsers.
//!
//! Run with `cargo +nightly fuzz run parse_any` from `services/gs1` (or `RUSTC_BOOTSTRAP=1
//! cargo fuzz run parse_any` on stable). Whatever parses must build back to data that parses
//! to the same elements.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tracery_gs1::{DigitalLink, ElementString, digital_link::DEFAULT_RESOLVER};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(parsed) = tracery_gs1::parse_any(text) {
        let raw = parsed.elements.to_raw();
        let again = ElementString::parse(&raw).expect("raw form of parsed data parses");
        assert_eq!(again, parsed.elements);
        if let Ok(link) = DigitalLink::from_element_string(DEFAULT_RESOLVER, &parsed.elements) {
            let back = DigitalLink::parse(&link.to_uri()).expect("built Digital Link parses");
            assert_eq!(back.elements.elements().len(), parsed.elements.elements().len());
        }
    }
    let _ = DigitalLink::parse(text);
    let _ = ElementString::parse(text);
});
