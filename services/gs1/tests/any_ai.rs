//! Property test over the whole AI table: element strings of random AIs with random valid
//! values survive raw → parse and bracketed → parse, and Digital Link round trips.

use proptest::prelude::*;
use tracery_gs1::{
    DigitalLink, ElementString,
    ai::{self, AiDef, Check, Component},
    charset::{Charset, with_check_digit},
    digital_link::DEFAULT_RESOLVER,
};

const GTIN: &str = "09506000134352";

/// A valid value for `component`, drawn from `seed` bytes.
fn component_value(component: &Component, length: usize, seed: &[u8]) -> String {
    let pick =
        |i: usize, set: &[u8]| char::from(set[usize::from(seed[i % seed.len()]) % set.len()]);
    let cset82 =
        b"!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz";
    match component.check {
        Check::CheckDigit => {
            let body: String = (0..length - 1).map(|i| pick(i, b"0123456789")).collect();
            with_check_digit(&body).expect("digits")
        }
        Check::Date { .. } => format!(
            "{:02}{:02}{:02}",
            seed[0] % 100,
            1 + seed[1] % 12,
            1 + seed[2] % 28
        ),
        Check::Hour => format!("{:02}", seed[0] % 24),
        Check::HourMinute => format!("{:02}{:02}", seed[0] % 24, seed[1] % 60),
        Check::MinuteOrSecond => format!("{:02}", seed[0] % 60),
        Check::Zero => "0".to_owned(),
        Check::None => (0..length)
            .map(|i| match component.charset {
                Charset::Numeric => pick(i, b"0123456789"),
                Charset::Cset82 => pick(i, cset82),
                Charset::Cset39 => pick(i, b"#-/0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"),
                Charset::Cset64 => pick(
                    i,
                    b"-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz",
                ),
            })
            .collect(),
    }
}

fn value(def: &AiDef, seed: &[u8]) -> String {
    let mut out = String::new();
    for (index, component) in def.components.iter().enumerate() {
        if component.optional && seed[index % seed.len()].is_multiple_of(2) {
            break;
        }
        let span = component.max - component.min + 1;
        let length = component.min + usize::from(seed[(index + 3) % seed.len()]) % span;
        out.push_str(&component_value(
            component,
            length,
            &seed[index % seed.len()..],
        ));
    }
    out
}

/// AIs that may sit next to a GTIN without further partners, sorted for stable shrinking.
fn partners_of_gtin() -> &'static [&'static AiDef] {
    static PARTNERS: std::sync::OnceLock<Vec<&'static AiDef>> = std::sync::OnceLock::new();
    PARTNERS.get_or_init(find_partners_of_gtin)
}

fn find_partners_of_gtin() -> Vec<&'static AiDef> {
    let mut defs: Vec<&'static AiDef> = ai::all()
        .filter(|def| {
            let sample = value(def, &[7, 3, 5, 1, 9, 2, 8, 4]);
            ElementString::from_pairs([("01", GTIN), (def.ai.as_str(), sample.as_str())]).is_ok()
        })
        .collect();
    defs.sort_by(|a, b| a.ai.cmp(&b.ai));
    defs
}

fn looks_like_bracketed_ai(value: &str) -> bool {
    value.match_indices('(').any(|(i, _)| {
        value[i + 1..].split_once(')').is_some_and(|(ai, _)| {
            (2..=4).contains(&ai.len()) && ai.bytes().all(|b| b.is_ascii_digit())
        })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn random_element_strings_round_trip(
        picks in proptest::collection::vec((any::<proptest::sample::Index>(), proptest::collection::vec(any::<u8>(), 8..40)), 1..6)
    ) {
        let partners = partners_of_gtin();
        prop_assert!(partners.len() > 250, "most of the table pairs with a GTIN: {}", partners.len());
        let mut pairs = vec![("01".to_owned(), GTIN.to_owned())];
        for (index, seed) in &picks {
            let def = partners[index.index(partners.len())];
            if pairs.iter().all(|(ai, _)| *ai != def.ai) {
                pairs.push((def.ai.clone(), value(def, seed)));
            }
        }
        // Random picks can still clash (two net weights, 420 with 421): those are not the point.
        let built = ElementString::from_pairs(pairs.iter().map(|(a, v)| (a.as_str(), v.as_str())));
        prop_assume!(built.is_ok());
        let built = built.expect("checked");

        let raw = ElementString::parse(&format!("]C1{}", built.to_raw())).expect("raw parses");
        prop_assert_eq!(&raw, &built);
        if !pairs.iter().any(|(_, v)| looks_like_bracketed_ai(v)) {
            prop_assert_eq!(&ElementString::parse(&built.to_bracketed()).expect("bracketed parses"), &built);
        }
        let link = DigitalLink::from_element_string(DEFAULT_RESOLVER, &built).expect("GTIN is a key");
        let back = DigitalLink::parse(&link.to_uri()).expect("link parses");
        let mut expected: Vec<_> = built.elements().to_vec();
        let mut got: Vec<_> = back.elements.elements().to_vec();
        expected.sort_by(|a, b| a.ai().cmp(b.ai()));
        got.sort_by(|a, b| a.ai().cmp(b.ai()));
        prop_assert_eq!(got, expected);
    }
}
