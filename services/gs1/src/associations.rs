//! GS1 mandatory associations and invalid pairs of AIs (General Specifications §4.14, as
//! tabulated per AI in the GS1 Barcode Syntax Dictionary).
//!
//! Patterns use `n` for any digit (`31nn` is every AI from 3100 to 3199). A requirement is a
//! comma-separated list of alternatives, each alternative one AI or several joined by `+`.

use crate::{
    element_string::ElementString,
    error::{Gs1Error, Gs1ErrorKind, Result},
};

const TRADE_ITEM: &str = "01,02,03,8006,8026";
const MEASURED: &str = "30,31nn,32nn,35nn,36nn";

/// `(AI pattern, requirements that must all hold)`; the first matching pattern applies.
const REQUIRES: &[(&str, &[&str])] = &[
    ("02", &["37"]),
    ("10", &[TRADE_ITEM]),
    ("11", &[TRADE_ITEM]),
    ("12", &["8020"]),
    ("13", &[TRADE_ITEM]),
    ("15", &[TRADE_ITEM]),
    ("16", &[TRADE_ITEM]),
    ("17", &["01,02,03,255,8006,8026"]),
    ("20", &["01,02,8006,8026"]),
    ("21", &["01,03,8006"]),
    ("22", &["01"]),
    ("235", &["01"]),
    ("240", &["01,02,8006,8026"]),
    ("241", &["01,02,8006,8026"]),
    ("242", &["01,02,8006,8026"]),
    ("243", &["01"]),
    ("250", &["01,8006", "21"]),
    ("251", &["01,8006"]),
    ("254", &["414"]),
    ("30", &["01,02"]),
    ("31nn", &["01,02"]),
    ("32nn", &["01,02"]),
    ("337n", &["01"]),
    ("33nn", &["00,01"]),
    ("34nn", &["00,01"]),
    ("350n", &["01,02"]),
    ("351n", &["01,02"]),
    ("352n", &["01,02"]),
    ("35nn", &["00,01"]),
    ("362n", &["00,01"]),
    ("363n", &["00,01"]),
    ("367n", &["00,01"]),
    ("368n", &["00,01"]),
    ("369n", &["00,01"]),
    ("36nn", &["01,02"]),
    ("37", &["00", "02,8026"]),
    ("390n", &["255,8020"]),
    ("391n", &["8020"]),
    ("392n", &["01", MEASURED]),
    ("393n", &[MEASURED]),
    ("394n", &["255"]),
    ("395n", &[MEASURED]),
    ("403", &["00"]),
    ("415", &["8020"]),
    ("422", &["01,02,8006,8026"]),
    ("423", &["01,02"]),
    ("424", &["01,02"]),
    ("425", &["01,02"]),
    ("426", &["01,02"]),
    ("427", &["01,02", "422"]),
    ("4303", &["4302"]),
    ("4313", &["4312"]),
    ("43nn", &["00"]),
    ("7001", &["01,02,8006,8026"]),
    ("7004", &["01", "10"]),
    ("700n", &["01,02"]),
    ("701n", &["01,02"]),
    ("7020", &["01,8006", "416"]),
    ("7021", &["01,8006"]),
    ("7022", &["7021"]),
    ("703n", &["01,02"]),
    ("7041", &["00"]),
    ("71n", &["01"]),
    ("723n", &["01,8004"]),
    ("7240", &["01,8006"]),
    ("7241", &["8017,8018"]),
    ("7242", &["8017,8018"]),
    ("7250", &["8018"]),
    ("7251", &["8018"]),
    ("7252", &["8018"]),
    ("7253", &["8017,8018"]),
    ("7254", &["8017,8018"]),
    ("7255", &["8017,8018"]),
    ("7256", &["8017,8018"]),
    ("7257", &["8018"]),
    ("7258", &["8018+7259"]),
    ("7259", &["8018"]),
    ("8001", &["01"]),
    ("8005", &["01,02"]),
    ("8007", &["415"]),
    ("8008", &["01,02"]),
    ("8009", &["00,01"]),
    ("8011", &["8010"]),
    ("8012", &["01,8006"]),
    ("8014", &["01"]),
    ("8019", &["8017,8018"]),
    ("8020", &["415"]),
    ("8026", &["37"]),
    (
        "8030",
        &["00,01+21,253,255,8003,8004,8006+21,8010+8011,8017,8018"],
    ),
    ("8111", &["255"]),
    ("8200", &["01"]),
];

/// `(AI pattern, AIs it must not appear with)`. An AI never excludes itself.
const EXCLUDES: &[(&str, &str)] = &[
    ("01", "255,37"),
    ("02", "01,03"),
    ("03", "01,02,37"),
    ("21", "235"),
    ("255", "01,02,415,8006,8020,8026"),
    ("390n", "390n,391n,394n,8111"),
    ("391n", "391n"),
    ("392n", "392n,393n"),
    ("393n", "393n"),
    ("394n", "394n,8111"),
    ("395n", "392n,393n,395n,8005"),
    ("420", "421"),
    ("421", "4307"),
    ("422", "426"),
    ("423", "426"),
    ("424", "426"),
    ("425", "426"),
    ("4330", "4331"),
    ("4331", "4330"),
    ("4332", "4333"),
    ("4333", "4332"),
    ("7250", "7251"),
    ("7251", "7250"),
    ("7253", "7256,7259"),
    ("7254", "7256,7259"),
    ("7255", "7256,7259"),
    ("7259", "7256"),
    ("8006", "01,37"),
    ("8017", "8018"),
    ("8018", "8017"),
    ("8026", "02,8006"),
];

fn matches(pattern: &str, ai: &str) -> bool {
    pattern.len() == ai.len()
        && pattern
            .bytes()
            .zip(ai.bytes())
            .all(|(p, a)| p == a || (p == b'n' && a.is_ascii_digit()))
}

fn present(string: &ElementString, pattern: &str, except: &str) -> Option<String> {
    string
        .elements()
        .iter()
        .map(|e| e.ai())
        .find(|ai| *ai != except && matches(pattern, ai))
        .map(str::to_owned)
}

/// Measures and amounts: one AI per family, whatever its decimal-places digit.
fn same_measure_twice(string: &ElementString, ai: &str) -> Option<String> {
    let is_measure = ai.len() == 4 && matches("3nnn", ai) && !ai.starts_with("39");
    if !is_measure {
        return None;
    }
    present(string, &format!("{}n", &ai[..3]), ai)
}

/// Checks the associations of all elements of `string`; forbidden pairs are reported first.
pub fn check(string: &ElementString) -> Result<()> {
    for element in string.elements() {
        let ai = element.ai();
        let excluded = EXCLUDES
            .iter()
            .filter(|(pattern, _)| matches(pattern, ai))
            .flat_map(|(_, others)| others.split(','))
            .find_map(|other| present(string, other, ai))
            .or_else(|| same_measure_twice(string, ai));
        if let Some(other) = excluded {
            return Err(Gs1Error::new(
                Gs1ErrorKind::InvalidCombination,
                format!("must not appear together with ({other})"),
            )
            .in_ai(ai));
        }
    }
    for element in string.elements() {
        let ai = element.ai();
        let Some((_, requirements)) = REQUIRES.iter().find(|(pattern, _)| matches(pattern, ai))
        else {
            continue;
        };
        for requirement in *requirements {
            let met = requirement.split(',').any(|alternative| {
                alternative
                    .split('+')
                    .all(|needed| present(string, needed, ai).is_some())
            });
            if !met {
                let listed: Vec<String> = requirement
                    .split(',')
                    .map(|alternative| {
                        alternative
                            .split('+')
                            .map(|a| format!("({a})"))
                            .collect::<Vec<_>>()
                            .join(" with ")
                    })
                    .collect();
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
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::element_string::ElementString;
    use crate::error::Gs1ErrorKind;

    #[test]
    fn associations_from_the_syntax_dictionary() {
        let ok = [
            "(00)106141412345678908(02)09506000134352(37)12",
            "(01)09506000134352(3103)001250(3922)1234",
            "(414)0614141123452(254)A1",
            "(8018)061414112345678902(8019)42",
            "(01)09506000134352(21)1(250)X",
        ];
        for input in ok {
            assert!(ElementString::parse(input).is_ok(), "{input}");
        }
        let bad = [
            ("(02)09506000134352", Gs1ErrorKind::MissingAssociation, "02"),
            (
                "(01)09506000134352(3103)001250(3102)012500",
                Gs1ErrorKind::InvalidCombination,
                "3103",
            ),
            (
                "(01)09506000134352(3922)1234",
                Gs1ErrorKind::MissingAssociation,
                "3922",
            ),
            (
                "(01)09506000134352(250)X",
                Gs1ErrorKind::MissingAssociation,
                "250",
            ),
            (
                "(8017)061414112345678902(8018)061414112345678902",
                Gs1ErrorKind::InvalidCombination,
                "8017",
            ),
            (
                "(01)09506000134352(21)1(235)2",
                Gs1ErrorKind::InvalidCombination,
                "21",
            ),
            ("(4303)Street 2", Gs1ErrorKind::IllegalCharacter, "4303"),
            ("(4303)Street", Gs1ErrorKind::MissingAssociation, "4303"),
        ];
        for (input, kind, ai) in bad {
            let err = ElementString::parse(input).expect_err(input);
            assert_eq!(
                (err.kind, err.ai.as_deref()),
                (kind, Some(ai)),
                "{input}: {err}"
            );
        }
    }
}
