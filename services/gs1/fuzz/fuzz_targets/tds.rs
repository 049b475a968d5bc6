//! Feeds arbitrary text to the EPC binary decoder and the tag-URI reader.
//!
//! Run with `cargo +nightly fuzz run tds` from `services/gs1` (or `RUSTC_BOOTSTRAP=1 cargo
//! fuzz run tds` on stable). Whatever decodes must encode back to hex that decodes to the
//! same tag, and whatever tag URI reads must be written back the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tracery_gs1::tds::TagEpc;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(tag) = TagEpc::from_hex(text) {
        let hex = tag.to_hex().expect("a decoded tag encodes");
        assert_eq!(TagEpc::from_hex(&hex).expect("encoded hex decodes"), tag);
    }
    if let Ok(tag) = TagEpc::from_tag_uri(text) {
        if let Ok(hex) = tag.to_hex() {
            let back = TagEpc::from_hex(&hex).expect("encoded hex decodes");
            assert_eq!(back.tag_uri(), tag.tag_uri());
        }
    }
});
