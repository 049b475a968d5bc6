//! The EPC Tag Data Standard vectors of `../shared/rfid/tds-examples.json`, both ways, and
//! encode → decode as the identity for every scheme and partition.

use proptest::prelude::*;
use serde_json::Value;
use tracery_gs1::tds::{SCHEMES, TagEpc};

/// The shared vectors, or `None` (loudly) where `../shared` is absent; with
/// `TRACERY_REQUIRE_FIXTURES=1` (CI) absence fails.
fn vectors() -> Option<Vec<Value>> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/rfid/tds-examples.json");
    let Ok(text) = std::fs::read_to_string(&path) else {
        assert!(
            std::env::var("TRACERY_REQUIRE_FIXTURES").as_deref() != Ok("1"),
            "TRACERY_REQUIRE_FIXTURES=1 but {} is missing",
            path.display()
        );
        eprintln!(
            "\n*** SKIPPED: {} is missing; this test did not run ***\n",
            path.display()
        );
        return None;
    };
    let document: Value = serde_json::from_str(&text).expect("vectors are JSON");
    Some(document["vectors"].as_array().expect("vectors").clone())
}

fn text<'a>(vector: &'a Value, field: &str) -> Option<&'a str> {
    vector.get(field).and_then(Value::as_str)
}

#[test]
fn every_valid_vector_decodes_and_encodes_both_ways() {
    let Some(vectors) = vectors() else { return };
    let valid: Vec<&Value> = vectors.iter().filter(|v| v["valid"] == true).collect();
    assert!(valid.len() >= 26, "{} valid vectors", valid.len());
    for vector in valid {
        let id = text(vector, "id").expect("id");
        let tag_uri = text(vector, "tag_uri").expect("tag_uri");
        let hex = text(vector, "hex").expect("hex");
        let bank = text(vector, "hex_epc_bank").unwrap_or(hex);
        for written in [hex, bank, &hex.to_lowercase()] {
            let decoded = TagEpc::from_hex(written).unwrap_or_else(|e| panic!("{id}: {e}"));
            assert_eq!(decoded.tag_uri(), tag_uri, "{id}");
            assert_eq!(
                decoded.pure_identity(),
                text(vector, "pure_identity").expect("pure_identity"),
                "{id}"
            );
            if let Some(element_string) = text(vector, "gs1_element_string") {
                let (identifier, _) = decoded
                    .identifier()
                    .expect("a GS1 key")
                    .unwrap_or_else(|e| panic!("{id}: {e}"));
                let written = identifier.to_element_string().expect("element string");
                assert_eq!(written.to_bracketed(), element_string, "{id}");
            }
        }
        let encoded = TagEpc::from_tag_uri(tag_uri).unwrap_or_else(|e| panic!("{id}: {e}"));
        assert_eq!(encoded.to_hex().expect("encodes"), bank, "{id}");
    }
}

#[test]
fn every_invalid_vector_is_refused() {
    let Some(vectors) = vectors() else { return };
    for vector in vectors.iter().filter(|v| v["valid"] == false) {
        let id = text(vector, "id").expect("id");
        let input = text(vector, "input").expect("input");
        let refused = match text(vector, "direction") {
            Some("decode") => TagEpc::from_hex(input).err(),
            _ => TagEpc::from_tag_uri(input)
                .and_then(|epc| epc.to_hex().map(|_| epc))
                .err(),
        };
        let refused = refused.unwrap_or_else(|| panic!("{id}: `{input}` was accepted"));
        eprintln!("{id}: {refused}");
    }
}

#[test]
fn errors_name_the_field() {
    let error = |hex: &str| TagEpc::from_hex(hex).expect_err(hex).to_string();
    assert!(
        error("E274257BF7194E4000001A85").starts_with("header: E2 is assigned to no EPC scheme")
    );
    assert!(error("0074257BF7194E4000001A85").starts_with("header: 00 is an unprogrammed tag"));
    assert!(error("307C257BF7194E4000001A85").starts_with("partition: 7"));
    assert!(error("3074257BF7194E4000001A8").contains("truncated"));
    assert!(error("3074257BF7194E4000001A8G").contains("'G'"));
    let uri = |uri: &str| TagEpc::from_tag_uri(uri).expect_err(uri).to_string();
    assert!(uri("urn:epc:tag:sgtin-96:8.0614141.812345.6789").starts_with("filter: "));
    assert!(uri("urn:epc:tag:sgtin-96:0.0614141.712345.274877906944").starts_with("serial: "));
    assert!(uri("urn:epc:tag:sgtin-198:3.0614141.712345.32a/b").starts_with("serial: '/'"));
}

/// A tag URI of `scheme` with a company prefix of `cp_digits` digits, from arbitrary parts.
fn tag_uri(scheme: usize, filter: u8, cp_digits: usize, number: u64, text: &str) -> String {
    let scheme = &SCHEMES[scheme];
    let company: String = format!("{:012}", number % 1_000_000_000_000)[..cp_digits].to_owned();
    let company = format!("{}{}", (number % 9) + 1, &company[1..]);
    let digits =
        |count: usize| format!("{:017}", number % 100_000_000_000_000_000)[17 - count..].to_owned();
    let integer = |bits: u32| (number % (1u64 << bits.min(63))).to_string();
    let text = escape(text);
    let body = match scheme.name {
        "sgtin-96" => format!("{company}.{}.{}", digits(13 - cp_digits), integer(38)),
        "sgtin-198" => format!("{company}.{}.{text}", digits(13 - cp_digits)),
        "sscc-96" => format!("{company}.{}", digits(17 - cp_digits)),
        "sgln-96" => format!("{company}.{}.{}", digits(12 - cp_digits), integer(41)),
        "sgln-195" => format!("{company}.{}.{text}", digits(12 - cp_digits)),
        "grai-96" => format!("{company}.{}.{}", digits(12 - cp_digits), integer(38)),
        "grai-170" => format!("{company}.{}.{}", digits(12 - cp_digits), &text),
        "giai-96" => format!("{company}.{}", integer(42)),
        "giai-202" => format!("{company}.{text}"),
        _ => {
            return format!(
                "urn:epc:tag:gid-96:{}.{}.{}",
                number % (1 << 28),
                number % (1 << 24),
                number % (1 << 36)
            );
        }
    };
    format!("urn:epc:tag:{}:{filter}.{body}", scheme.name)
}

fn escape(text: &str) -> String {
    text.replace('%', "%25")
        .replace('/', "%2F")
        .replace('&', "%26")
        .replace('"', "%22")
        .replace('<', "%3C")
        .replace('>', "%3E")
        .replace('?', "%3F")
}

proptest! {
    #[test]
    fn encode_then_decode_is_the_identity(
        scheme in 0..SCHEMES.len(),
        filter in 0u8..8,
        cp_digits in 6usize..=12,
        number in any::<u64>(),
        text in "[A-Za-z0-9!\"%&'()*+,./:;<=>?_-]{1,12}",
    ) {
        let uri = tag_uri(scheme, filter, cp_digits, number, &text);
        let encoded = TagEpc::from_tag_uri(&uri).map_err(|e| TestCaseError::fail(format!("{uri}: {e}")))?;
        let hex = encoded.to_hex().map_err(|e| TestCaseError::fail(format!("{uri}: {e}")))?;
        let decoded = TagEpc::from_hex(&hex).map_err(|e| TestCaseError::fail(format!("{uri} {hex}: {e}")))?;
        prop_assert_eq!(decoded.tag_uri(), uri);
    }

    #[test]
    fn decoding_any_hex_never_panics(hex in "[0-9A-F]{2,52}") {
        let _ = TagEpc::from_hex(&hex);
    }
}

#[test]
fn parse_any_reads_hex_and_tag_uris_and_leaves_element_strings_alone() {
    let hex = tracery_gs1::parse_any("3074257BF7194E4000001A85").expect("hex");
    assert_eq!(hex.syntax, tracery_gs1::Syntax::EpcHex);
    assert_eq!(hex.elements.to_bracketed(), "(01)80614141123458(21)6789");
    assert_eq!(hex.company_prefix_length, Some(7));
    let tag = tracery_gs1::parse_any("urn:epc:tag:sscc-96:3.0614141.1234567890").expect("tag");
    assert_eq!(tag.syntax, tracery_gs1::Syntax::EpcTagUri);
    assert_eq!(tag.elements.to_bracketed(), "(00)106141412345678908");
    // 24 digits, all hex digits too, but an element string: (01)…(21)123456.
    let raw = tracery_gs1::parse_any("010614141123456221123456").expect("raw");
    assert_eq!(raw.syntax, tracery_gs1::Syntax::ElementString);
    let gid = tracery_gs1::parse_any("350007AB70425D4000000586").expect_err("a GID");
    assert!(
        gid.to_string().contains("urn:epc:id:gid:31415.271828.1414"),
        "{gid}"
    );
}
