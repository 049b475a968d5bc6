//! EPC pure-identity URNs (GS1 EPC Tag Data Standard §6): `urn:epc:id:sgtin:…`,
//! `urn:epc:class:lgtin:…`, `urn:epc:idpat:sgtin:…`, SSCC, SGLN, GRAI, GIAI, GSRN, GDTI.
//!
//! A URN marks where the GS1 company prefix ends with a dot, so turning a key into a URN
//! needs the company prefix length, while reading a URN does not.

use crate::{
    charset::with_check_digit,
    error::{Gs1Error, Gs1ErrorKind, Result},
    key::{Identifier, KeyKind},
};

/// Characters of set 82 that a URN must percent-escape (TDS §6.3.1).
const ESCAPED: &[(char, &str)] = &[
    ('%', "%25"),
    ('"', "%22"),
    ('&', "%26"),
    ('/', "%2F"),
    ('<', "%3C"),
    ('>', "%3E"),
    ('?', "%3F"),
];

/// The EPC URN form of an identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrnForm {
    /// `urn:epc:id:…`: one instance.
    Instance,
    /// `urn:epc:class:…`: a class (LGTIN).
    Class,
    /// `urn:epc:idpat:…`: a pattern (all instances of a GTIN).
    Pattern,
}

/// The form and scheme of an EPC URN (`urn:epc:id:sgtin:…` → `(Instance, "sgtin")`), or
/// `None` when `urn` is not an EPC URN at all.
pub fn urn_scheme(urn: &str) -> Option<(UrnForm, &str)> {
    let (form, rest) = [
        ("urn:epc:id:", UrnForm::Instance),
        ("urn:epc:class:", UrnForm::Class),
        ("urn:epc:idpat:", UrnForm::Pattern),
    ]
    .iter()
    .find_map(|(prefix, form)| urn.strip_prefix(prefix).map(|rest| (*form, rest)))?;
    rest.split_once(':').map(|(scheme, _)| (form, scheme))
}

/// Whether [`Identifier::from_epc_urn`] reads this form and scheme. Other EPC schemes
/// (PGLN, GINC, ITIP, ...) are valid EPCs this crate does not decode.
pub fn is_supported(form: UrnForm, scheme: &str) -> bool {
    match form {
        UrnForm::Instance => {
            ["sgtin", "sscc", "sgln", "grai", "giai", "gsrn", "gdti"].contains(&scheme)
        }
        UrnForm::Class => scheme == "lgtin",
        UrnForm::Pattern => scheme == "sgtin",
    }
}

fn syntax(detail: impl Into<String>) -> Gs1Error {
    Gs1Error::new(Gs1ErrorKind::Syntax, detail)
}

fn escape(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    push_escaped(&mut escaped, value);
    escaped
}

/// Appends `value` to `out` with the characters a URN escapes escaped.
pub(crate) fn push_escaped(out: &mut String, value: &str) {
    if !value
        .bytes()
        .any(|b| matches!(b, b'%' | b'"' | b'&' | b'/' | b'<' | b'>' | b'?'))
    {
        out.push_str(value);
        return;
    }
    for c in value.chars() {
        match ESCAPED.iter().find(|(e, _)| *e == c) {
            Some((_, escaped)) => out.push_str(escaped),
            None => out.push(c),
        }
    }
}

pub(crate) fn unescape(value: &str) -> Result<String> {
    let mut out = String::new();
    let mut rest = value;
    while let Some(index) = rest.find('%') {
        out.push_str(&rest[..index]);
        let code = rest.get(index..index + 3).unwrap_or(&rest[index..]);
        let (c, _) = ESCAPED
            .iter()
            .find(|(_, e)| e.eq_ignore_ascii_case(code))
            .ok_or_else(|| syntax(format!("`{code}` is not an allowed escape in an EPC URN")))?;
        out.push(*c);
        rest = &rest[index + code.len()..];
    }
    out.push_str(rest);
    Ok(out)
}

fn check_prefix_length(length: usize, max: usize) -> Result<()> {
    if (6..=max).contains(&length) {
        Ok(())
    } else {
        Err(Gs1Error::new(
            Gs1ErrorKind::WrongLength,
            format!("company prefix length {length} is outside 6..={max}"),
        ))
    }
}

impl Identifier {
    /// The EPC URN for this identifier, given the length of its GS1 company prefix.
    ///
    /// A serialised GTIN gives an SGTIN (the lot is not part of an SGTIN), a GTIN with a lot
    /// an LGTIN class, and a bare GTIN the SGTIN pattern `urn:epc:idpat:sgtin:CP.REF.*`.
    pub fn to_epc_urn(&self, company_prefix_length: usize) -> Result<String> {
        let cp = company_prefix_length;
        let key = &self.key;
        match self.kind {
            KeyKind::Gtin => {
                check_prefix_length(cp, 12)?;
                let company = &key[1..=cp];
                let reference = format!("{}{}", &key[..1], &key[cp + 1..13]);
                Ok(match (&self.serial, &self.lot) {
                    (Some(serial), _) => {
                        format!("urn:epc:id:sgtin:{company}.{reference}.{}", escape(serial))
                    }
                    (None, Some(lot)) => {
                        format!("urn:epc:class:lgtin:{company}.{reference}.{}", escape(lot))
                    }
                    (None, None) => format!("urn:epc:idpat:sgtin:{company}.{reference}.*"),
                })
            }
            KeyKind::Sscc => {
                check_prefix_length(cp, 12)?;
                let reference = format!("{}{}", &key[..1], &key[cp + 1..17]);
                Ok(format!("urn:epc:id:sscc:{}.{reference}", &key[1..=cp]))
            }
            KeyKind::Gln => {
                check_prefix_length(cp, 12)?;
                let extension = self
                    .serial
                    .as_deref()
                    .map_or_else(|| "0".to_owned(), escape);
                Ok(format!(
                    "urn:epc:id:sgln:{}.{}.{extension}",
                    &key[..cp],
                    &key[cp..12]
                ))
            }
            KeyKind::Grai => {
                check_prefix_length(cp, 12)?;
                let serial = self
                    .serial
                    .as_deref()
                    .ok_or_else(|| syntax("a GRAI needs a serial component to be an EPC"))?;
                Ok(format!(
                    "urn:epc:id:grai:{}.{}.{}",
                    &key[..cp],
                    &key[cp..12],
                    escape(serial)
                ))
            }
            KeyKind::Gdti => {
                check_prefix_length(cp, 12)?;
                let serial = self
                    .serial
                    .as_deref()
                    .ok_or_else(|| syntax("a GDTI needs a serial component to be an EPC"))?;
                Ok(format!(
                    "urn:epc:id:gdti:{}.{}.{}",
                    &key[..cp],
                    &key[cp..12],
                    escape(serial)
                ))
            }
            KeyKind::Giai => {
                check_prefix_length(cp, 12.min(key.len()))?;
                if !key[..cp].bytes().all(|b| b.is_ascii_digit()) {
                    return Err(syntax("a GIAI must start with its numeric company prefix"));
                }
                Ok(format!(
                    "urn:epc:id:giai:{}.{}",
                    &key[..cp],
                    escape(&key[cp..])
                ))
            }
            KeyKind::Gsrn => {
                check_prefix_length(cp, 12)?;
                Ok(format!("urn:epc:id:gsrn:{}.{}", &key[..cp], &key[cp..17]))
            }
        }
    }

    /// Reads an EPC URN; returns the identifier and the company prefix length it shows.
    pub fn from_epc_urn(urn: &str) -> Result<(Self, usize)> {
        crate::check_input_length(urn)?;
        let (form, scheme) = urn_scheme(urn).ok_or_else(|| {
            syntax("expected urn:epc:id:<scheme>:..., urn:epc:class:lgtin:... or urn:epc:idpat:sgtin:...")
        })?;
        if !is_supported(form, scheme) {
            return Err(syntax(format!("unsupported EPC scheme `{scheme}`")));
        }
        let body = &urn[urn.find(scheme).unwrap_or_default() + scheme.len() + 1..];
        // Serials and lots may hold dots, so split only as often as the scheme has parts.
        let part_count = match scheme {
            "sscc" | "giai" | "gsrn" => 2,
            _ => 3,
        };
        let parts: Vec<&str> = body.splitn(part_count, '.').collect();
        let company = parts.first().copied().unwrap_or_default();
        if company.is_empty() || !company.chars().all(|c| c.is_ascii_digit()) {
            return Err(syntax("the company prefix must be digits"));
        }
        let cp = company.len();
        let part = |index: usize| -> Result<&str> {
            parts
                .get(index)
                .copied()
                .ok_or_else(|| syntax(format!("`{scheme}` needs more dot-separated parts")))
        };
        let expect_parts = |count: usize| -> Result<()> {
            if parts.len() == count {
                Ok(())
            } else {
                Err(syntax(format!(
                    "`{scheme}` has {count} dot-separated parts, not {}",
                    parts.len()
                )))
            }
        };
        let digits = |s: &str, len: usize, what: &str| -> Result<()> {
            if s.len() == len && s.chars().all(|c| c.is_ascii_digit()) {
                Ok(())
            } else {
                Err(Gs1Error::new(
                    Gs1ErrorKind::WrongLength,
                    format!("{what} `{s}` must be {len} digits with a {cp}-digit company prefix"),
                ))
            }
        };
        let complete = |digits: String| with_check_digit(&digits).unwrap_or_default();
        let identifier = match scheme {
            "sgtin" | "lgtin" => {
                expect_parts(3)?;
                let reference = part(1)?;
                digits(reference, 13 - cp, "indicator and item reference")?;
                let gtin = complete(format!("{}{company}{}", &reference[..1], &reference[1..]));
                let last = part(2)?;
                match (form == UrnForm::Pattern, scheme) {
                    (true, _) if last == "*" => Identifier::gtin(&gtin, None, None)?,
                    (true, _) => return Err(syntax("an SGTIN pattern ends in `.*`")),
                    (false, "lgtin") => Identifier::gtin(&gtin, Some(&unescape(last)?), None)?,
                    _ => Identifier::gtin(&gtin, None, Some(&unescape(last)?))?,
                }
            }
            "sscc" => {
                expect_parts(2)?;
                let reference = part(1)?;
                digits(reference, 17 - cp, "extension and serial reference")?;
                let sscc = complete(format!("{}{company}{}", &reference[..1], &reference[1..]));
                Identifier::new(KeyKind::Sscc, &sscc, None, None)?
            }
            "sgln" | "grai" | "gdti" => {
                expect_parts(3)?;
                let reference = part(1)?;
                digits(
                    reference,
                    12 - cp,
                    "location, asset or document type reference",
                )?;
                let key = complete(format!("{company}{reference}"));
                let last = unescape(part(2)?)?;
                let kind = match scheme {
                    "sgln" => KeyKind::Gln,
                    "grai" => KeyKind::Grai,
                    _ => KeyKind::Gdti,
                };
                let serial = Some(last.as_str()).filter(|s| !(kind == KeyKind::Gln && *s == "0"));
                Identifier::new(kind, &key, None, serial)?
            }
            "giai" => {
                expect_parts(2)?;
                let key = format!("{company}{}", unescape(part(1)?)?);
                Identifier::new(KeyKind::Giai, &key, None, None)?
            }
            _ => {
                expect_parts(2)?;
                let reference = part(1)?;
                digits(reference, 17 - cp, "service reference")?;
                Identifier::new(
                    KeyKind::Gsrn,
                    &complete(format!("{company}{reference}")),
                    None,
                    None,
                )?
            }
        };
        Ok((identifier, cp))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tds_examples() {
        let cases = [
            (
                "urn:epc:id:sgtin:0614141.112345.400",
                "(01)10614141123459(21)400",
            ),
            (
                "urn:epc:class:lgtin:4012345.012345.998877",
                "(01)04012345123456(10)998877",
            ),
            (
                "urn:epc:id:sscc:0614141.1234567890",
                "(00)106141412345678908",
            ),
            (
                "urn:epc:id:sgln:0614141.12345.400",
                "(414)0614141123452(254)400",
            ),
            ("urn:epc:id:sgln:0614141.12345.0", "(414)0614141123452"),
            (
                "urn:epc:id:grai:0614141.12345.400",
                "(8003)00614141123452400",
            ),
            ("urn:epc:id:giai:0614141.12345400", "(8004)061414112345400"),
            (
                "urn:epc:id:gsrn:0614141.1234567890",
                "(8018)061414112345678902",
            ),
            ("urn:epc:id:gdti:0614141.12345.400", "(253)0614141123452400"),
            ("urn:epc:idpat:sgtin:4012345.012345.*", "(01)04012345123456"),
        ];
        for (urn, element_string) in cases {
            let (id, cp) = Identifier::from_epc_urn(urn).expect(urn);
            assert_eq!(id.to_string(), element_string, "{urn}");
            assert_eq!(id.to_epc_urn(cp).expect("back"), urn);
        }
    }

    #[test]
    fn escaping() {
        let id = Identifier::gtin("09506000134352", None, Some("A/B%C")).expect("id");
        let urn = id.to_epc_urn(7).expect("urn");
        assert_eq!(urn, "urn:epc:id:sgtin:9506000.013435.A%2FB%25C");
        assert_eq!(Identifier::from_epc_urn(&urn).expect("parse").0, id);
    }

    #[test]
    fn errors() {
        let cases = [
            "urn:epc:id:sgtin:0614141.11234.400",
            "urn:epc:id:sgtin:0614141.112345",
            "urn:epc:id:foo:0614141.112345.1",
            "urn:epc:id:sgtin:0614141.112345.a b",
            "urn:epc:id:sgtin:0614141.112345.%41",
            "urn:epc:class:sgtin:0614141.112345.1",
        ];
        for urn in cases {
            assert!(Identifier::from_epc_urn(urn).is_err(), "{urn}");
        }
        let id = Identifier::gtin("09506000134352", None, Some("1")).expect("id");
        assert_eq!(
            id.to_epc_urn(13).expect_err("cp").kind,
            Gs1ErrorKind::WrongLength
        );
    }
}
