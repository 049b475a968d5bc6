//! Property tests: every identifier survives build → parse in each GS1 syntax.

use proptest::prelude::*;
use tracery_gs1::{
    DigitalLink, ElementString, Identifier, KeyKind, charset::with_check_digit,
    digital_link::DEFAULT_RESOLVER,
};

/// Set-82 characters, as a regex class.
const CSET82: &str = "[!\"%&'()*+,\\-./0-9:;<=>?A-Z_a-z]";

fn digits(n: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("[0-9]{{{n}}}")).expect("regex")
}

fn key(n: usize) -> impl Strategy<Value = String> {
    digits(n - 1).prop_map(|d| with_check_digit(&d).expect("digits"))
}

fn cset82(max: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("{CSET82}{{1,{max}}}")).expect("regex")
}

fn identifier() -> impl Strategy<Value = Identifier> {
    let cp = 6usize..=12;
    prop_oneof![
        (
            key(14),
            proptest::option::of(cset82(20)),
            proptest::option::of(cset82(20))
        )
            .prop_map(|(k, lot, serial)| Identifier {
                kind: KeyKind::Gtin,
                key: k,
                lot,
                serial
            }),
        key(18).prop_map(|k| Identifier {
            kind: KeyKind::Sscc,
            key: k,
            lot: None,
            serial: None
        }),
        (
            key(13),
            proptest::option::of(cset82(20).prop_filter("0 means none", |e| e != "0"))
        )
            .prop_map(|(k, serial)| Identifier {
                kind: KeyKind::Gln,
                key: k,
                lot: None,
                serial
            }),
        (key(13), cset82(16)).prop_map(|(k, s)| Identifier {
            kind: KeyKind::Grai,
            key: k,
            lot: None,
            serial: Some(s)
        }),
        (cp, digits(12), cset82(18)).prop_map(|(cp, prefix, rest)| Identifier {
            kind: KeyKind::Giai,
            key: format!("{}{rest}", &prefix[..cp]),
            lot: None,
            serial: None
        }),
        key(18).prop_map(|k| Identifier {
            kind: KeyKind::Gsrn,
            key: k,
            lot: None,
            serial: None
        }),
        (key(13), cset82(17)).prop_map(|(k, s)| Identifier {
            kind: KeyKind::Gdti,
            key: k,
            lot: None,
            serial: Some(s)
        }),
    ]
}

/// A value like `A(10)` is ambiguous in the bracketed form (GS1 HRI has no escaping).
fn bracket_safe(id: &Identifier) -> bool {
    let looks_like_ai = |v: &String| {
        v.match_indices('(').any(|(i, _)| {
            v[i + 1..].split_once(')').is_some_and(|(ai, _)| {
                (2..=4).contains(&ai.len()) && ai.bytes().all(|b| b.is_ascii_digit())
            })
        })
    };
    ![&id.lot, &id.serial]
        .into_iter()
        .flatten()
        .any(looks_like_ai)
        && !looks_like_ai(&id.key)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn element_strings_round_trip(id in identifier()) {
        let built = id.to_element_string().expect("valid identifier");
        let raw = ElementString::parse(&format!("]d2{}", built.to_raw())).expect("raw parses");
        prop_assert_eq!(Identifier::from_element_string(&raw).expect("key"), id.clone());
        if bracket_safe(&id) {
            let bracketed = ElementString::parse(&built.to_bracketed()).expect("bracketed parses");
            prop_assert_eq!(&bracketed, &built);
        }
    }

    #[test]
    fn digital_links_round_trip(id in identifier(), expiry in proptest::option::of(0u32..1000)) {
        let mut pairs: Vec<(String, String)> = id
            .to_element_string()
            .expect("valid")
            .elements()
            .iter()
            .map(|e| (e.ai().to_owned(), e.value.clone()))
            .collect();
        if let (Some(days), KeyKind::Gtin) = (expiry, id.kind) {
            let date = chrono::NaiveDate::from_ymd_opt(2025, 1, 1).expect("date") + chrono::Days::new(days.into());
            pairs.push(("17".into(), date.format("%y%m%d").to_string()));
        }
        let elements = ElementString::from_pairs(pairs.iter().map(|(a, v)| (a.as_str(), v.as_str()))).expect("valid");
        for stem in [DEFAULT_RESOLVER, "https://resolver.example.com/gs1"] {
            let uri = DigitalLink::from_element_string(stem, &elements).expect("link").to_uri();
            let parsed = DigitalLink::parse(&uri).expect("link parses");
            prop_assert_eq!(&parsed.stem, stem);
            prop_assert_eq!(&parsed.elements, &elements);
            prop_assert_eq!(Identifier::from_element_string(&parsed.elements).expect("key"), id.clone());
        }
    }

    #[test]
    fn epc_urns_round_trip(id in identifier(), cp in 6usize..=12) {
        let cp = if id.kind == KeyKind::Giai { cp.min(id.key.bytes().take_while(u8::is_ascii_digit).count().min(12)) } else { cp };
        prop_assume!(cp >= 6);
        let urn = id.to_epc_urn(cp).expect("urn");
        let (parsed, parsed_cp) = Identifier::from_epc_urn(&urn).expect("urn parses");
        prop_assert_eq!(parsed_cp, cp);
        // An SGTIN names the instance; the lot is not part of it.
        let expected = match id.serial {
            Some(_) if id.kind == KeyKind::Gtin => Identifier { lot: None, ..id },
            _ => id,
        };
        prop_assert_eq!(parsed, expected);
    }
}

#[test]
fn parse_any_accepts_all_three_syntaxes() {
    let from_urn = tracery_gs1::parse_any("urn:epc:id:sgtin:9506000.013435.12345").expect("urn");
    let from_link =
        tracery_gs1::parse_any("]Q1https://id.gs1.org/01/09506000134352/21/12345").expect("link");
    let from_raw = tracery_gs1::parse_any("]d2010950600013435221\u{1d}12345");
    assert!(from_raw.is_err(), "a GS right after 21 leaves it empty");
    let from_raw = tracery_gs1::parse_any("]d2010950600013435221 12345".replace(' ', "").as_str())
        .expect("raw");
    assert_eq!(from_urn.identifier, from_link.identifier);
    assert_eq!(from_link.identifier, from_raw.identifier);
    assert_eq!(from_urn.company_prefix_length, Some(7));
}

#[test]
fn canonical_uris_make_urns_and_links_comparable() {
    let canonical = tracery_gs1::canonical_uri;
    let sgtin = Some("https://id.gs1.org/01/09506000134352/21/12345".to_owned());
    assert_eq!(canonical("urn:epc:id:sgtin:9506000.013435.12345"), sgtin);
    assert_eq!(
        canonical("https://brand.example.com/01/09506000134352/10/L1/21/12345?17=261231"),
        sgtin
    );
    assert_eq!(
        canonical("urn:epc:class:lgtin:9506000.013435.L1").as_deref(),
        Some("https://id.gs1.org/01/09506000134352/10/L1")
    );
    assert_eq!(
        canonical("urn:epc:idpat:sgtin:9506000.013435.*").as_deref(),
        Some("https://id.gs1.org/01/09506000134352")
    );
    assert_eq!(
        canonical("urn:uuid:6f1c2a9e-3b1f-4c52-9d1e-0a4b7c2d8e11"),
        None
    );
    assert_eq!(canonical("https://example.com/assets/7"), None);
}
