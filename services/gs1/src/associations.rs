//! GS1 mandatory associations and invalid pairs of AIs (General Specifications §4.14).

use crate::{
    element_string::ElementString,
    error::{Gs1Error, Gs1ErrorKind, Result},
};

const TRADE_ITEM_KEYS: &[&str] = &["01", "02", "8006", "8026"];

/// `(AI or AI prefix, at least one of these AIs must be present)`.
const REQUIRES: &[(&str, &[&str])] = &[
    ("21", &["01", "8006"]),
    ("10", TRADE_ITEM_KEYS),
    ("11", TRADE_ITEM_KEYS),
    (
        "12",
        &[
            "00", "01", "02", "8006", "8026", "253", "255", "400", "401", "402",
        ],
    ),
    ("13", TRADE_ITEM_KEYS),
    ("15", TRADE_ITEM_KEYS),
    ("16", TRADE_ITEM_KEYS),
    ("17", &["01", "02", "8006", "8026", "255"]),
    ("7003", TRADE_ITEM_KEYS),
    ("22", &["01"]),
    ("235", &["01"]),
    ("250", &["21"]),
    ("254", &["414"]),
    ("02", &["00"]),
    ("37", &["02", "8026"]),
    ("8026", &["00"]),
    ("30", &["01", "02"]),
    ("31", &["00", "01", "02", "8006", "8026"]),
    ("32", &["00", "01", "02", "8006", "8026"]),
    ("33", &["00", "01", "02", "8006", "8026"]),
    ("34", &["00", "01", "02", "8006", "8026"]),
    ("35", &["00", "01", "02", "8006", "8026"]),
    ("36", &["00", "01", "02", "8006", "8026"]),
    ("392", &["01"]),
    ("393", &["01"]),
    ("8011", &["8010"]),
    ("8019", &["8017", "8018"]),
];

/// Pairs of AIs that must not appear together.
const EXCLUDES: &[(&str, &str)] = &[
    ("01", "02"),
    ("01", "03"),
    ("02", "03"),
    ("01", "37"),
    ("01", "8006"),
    ("21", "235"),
];

/// Checks the associations of all elements of `string`; forbidden pairs are reported first.
pub fn check(string: &ElementString) -> Result<()> {
    for element in string.elements() {
        let ai = element.ai();
        if let Some((other, _)) = EXCLUDES
            .iter()
            .find(|(a, b)| *b == ai && string.contains(a))
        {
            return Err(Gs1Error::new(
                Gs1ErrorKind::InvalidCombination,
                format!("must not appear together with ({other})"),
            )
            .in_ai(ai));
        }
    }
    for element in string.elements() {
        let ai = element.ai();
        if let Some((_, needed)) = REQUIRES.iter().find(|(prefix, _)| ai.starts_with(prefix))
            && !needed.iter().any(|n| string.contains(n))
        {
            let listed: Vec<String> = needed.iter().map(|n| format!("({n})")).collect();
            return Err(Gs1Error::new(
                Gs1ErrorKind::MissingAssociation,
                format!(
                    "requires {} in the same element string",
                    listed.join(" or ")
                ),
            )
            .in_ai(ai));
        }
    }
    Ok(())
}
