//! GS1 element strings: the bracketed human-readable form and the raw scanner form.
//!
//! `(01)09506000134352(17)261231(10)ABC(21)12345` and
//! `]d20109506000134352172612311 0ABC<GS>2112345` (GS = ASCII 29) are the same data.

use std::fmt;

use chrono::NaiveDate;

use crate::{
    ai::{self, AiDef, Check},
    error::{Gs1Error, Gs1ErrorKind, Result},
};

/// The group separator that stands for FNC1 between variable-length values.
pub const GS: char = '\u{1d}';

/// Symbology identifiers a scanner may prefix to GS1 data (ISO/IEC 15424).
pub const SYMBOLOGY_IDENTIFIERS: &[(&str, &str)] = &[
    ("]d2", "GS1 DataMatrix"),
    ("]Q3", "GS1 QR Code"),
    ("]C1", "GS1-128"),
    ("]e0", "GS1 DataBar"),
    ("]J1", "GS1 DotCode"),
];

/// One AI and its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    /// The AI's definition.
    pub def: &'static AiDef,
    /// The value as written.
    pub value: String,
}

impl Element {
    /// A checked element.
    pub fn new(ai: &str, value: impl Into<String>) -> Result<Self> {
        let def = ai::lookup(ai).ok_or_else(|| unknown_ai(ai))?;
        let value = value.into();
        def.check_value(&value)?;
        Ok(Self { def, value })
    }

    /// The AI digits.
    pub fn ai(&self) -> &str {
        &self.def.ai
    }
}

/// A decimal from a measure or amount AI (value digits with implied decimal places).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decimal {
    /// All digits as an integer.
    pub mantissa: u64,
    /// Digits after the decimal point.
    pub scale: u8,
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = format!(
            "{:0>width$}",
            self.mantissa,
            width = usize::from(self.scale) + 1
        );
        let (int, frac) = digits.split_at(digits.len() - usize::from(self.scale));
        if frac.is_empty() {
            f.write_str(int)
        } else {
            write!(f, "{int}.{frac}")
        }
    }
}

/// A checked list of GS1 elements: known AIs, valid values, mandatory associations met.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ElementString {
    elements: Vec<Element>,
}

impl ElementString {
    /// Checks `elements` as a whole (duplicates, associations) and wraps them. An AI repeated
    /// with the same value is redundant, not wrong, and is kept once.
    pub fn new(elements: Vec<Element>) -> Result<Self> {
        let string = Self { elements };
        string.check_duplicates()?;
        let mut elements = string.elements;
        let mut seen = std::collections::HashSet::new();
        elements.retain(|e| seen.insert(e.def.ai.clone()));
        let string = Self { elements };
        crate::associations::check(&string)?;
        Ok(string)
    }

    /// Builds and checks an element string from `(ai, value)` pairs.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Self> {
        let elements = pairs
            .into_iter()
            .map(|(ai, value)| Element::new(ai, value))
            .collect::<Result<Vec<_>>>()?;
        Self::new(elements)
    }

    /// Parses either form, with or without a symbology identifier.
    pub fn parse(text: &str) -> Result<Self> {
        crate::check_input_length(text)?;
        let (body, offset) = strip_symbology_identifier(text);
        if body.starts_with('(') {
            parse_bracketed(body).map_err(|e| e.shifted(offset))
        } else {
            parse_raw(body).map_err(|e| e.shifted(offset))
        }
    }

    /// The elements in order.
    pub fn elements(&self) -> &[Element] {
        &self.elements
    }

    /// The value of `ai`, if present.
    pub fn get(&self, ai: &str) -> Option<&str> {
        self.elements
            .iter()
            .find(|e| e.def.ai == ai)
            .map(|e| e.value.as_str())
    }

    /// Whether `ai` is present.
    pub fn contains(&self, ai: &str) -> bool {
        self.get(ai).is_some()
    }

    /// The GTIN (AI 01).
    pub fn gtin(&self) -> Option<&str> {
        self.get("01")
    }

    /// The batch/lot (AI 10).
    pub fn lot(&self) -> Option<&str> {
        self.get("10")
    }

    /// The serial (AI 21).
    pub fn serial(&self) -> Option<&str> {
        self.get("21")
    }

    /// The SSCC (AI 00).
    pub fn sscc(&self) -> Option<&str> {
        self.get("00")
    }

    /// The expiry date (AI 17), with DD = 00 read as the month's last day.
    pub fn expiry(&self) -> Option<NaiveDate> {
        self.date("17")
    }

    /// The date held by a date AI (11, 12, 13, 15, 16, 17, 7006, ...).
    pub fn date(&self, ai: &str) -> Option<NaiveDate> {
        let element = self.elements.iter().find(|e| e.def.ai == ai)?;
        match element.def.components.first()?.check {
            Check::Date { day_zero } => ai::parse_date(element.value.get(..6)?, day_zero).ok(),
            _ => None,
        }
    }

    /// The decimal held by a measure or amount AI of the given 3-digit family (`310` = net
    /// weight in kg), whichever decimal-places digit it was written with.
    pub fn decimal(&self, family: &str) -> Option<Decimal> {
        let element = self
            .elements
            .iter()
            .find(|e| e.def.ai.len() == 4 && e.def.ai.starts_with(family))?;
        let scale = element.def.decimals?;
        // Amount AIs 391n/393n carry an ISO 4217 currency code before the amount.
        let digits = match element.def.components.len() {
            2 => element.value.get(3..)?,
            _ => element.value.as_str(),
        };
        Some(Decimal {
            mantissa: digits.parse().ok()?,
            scale,
        })
    }

    /// The bracketed human-readable form.
    pub fn to_bracketed(&self) -> String {
        self.elements
            .iter()
            .map(|e| format!("({}){}", e.def.ai, e.value))
            .collect()
    }

    /// The raw form a barcode carries after its FNC1 start: values of AIs without a
    /// predefined length end with GS unless they come last.
    pub fn to_raw(&self) -> String {
        let mut raw = String::new();
        for (index, e) in self.elements.iter().enumerate() {
            raw.push_str(&e.def.ai);
            raw.push_str(&e.value);
            if !e.def.predefined_length && index + 1 < self.elements.len() {
                raw.push(GS);
            }
        }
        raw
    }

    fn check_duplicates(&self) -> Result<()> {
        for (index, e) in self.elements.iter().enumerate() {
            if let Some(other) = self.elements[..index].iter().find(|o| o.def.ai == e.def.ai)
                && other.value != e.value
            {
                return Err(Gs1Error::new(
                    Gs1ErrorKind::DuplicateAi,
                    format!(
                        "appears twice with different values ({} and {})",
                        other.value, e.value
                    ),
                )
                .in_ai(&e.def.ai));
            }
        }
        Ok(())
    }
}

impl fmt::Display for ElementString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_bracketed())
    }
}

fn unknown_ai(ai: &str) -> Gs1Error {
    Gs1Error::new(
        Gs1ErrorKind::UnknownAi,
        format!("({ai}) is not a GS1 Application Identifier"),
    )
}

/// Splits off a symbology identifier; returns the rest and its offset in `text`.
pub fn strip_symbology_identifier(text: &str) -> (&str, usize) {
    SYMBOLOGY_IDENTIFIERS
        .iter()
        .find_map(|(id, _)| text.strip_prefix(id).map(|rest| (rest, id.len())))
        .unwrap_or((text, 0))
}

fn parse_bracketed(text: &str) -> Result<ElementString> {
    let mut elements = Vec::new();
    let mut position = 0;
    while position < text.len() {
        let rest = &text[position..];
        let Some(close) = rest.strip_prefix('(').and_then(|r| r.find(')')) else {
            return Err(Gs1Error::new(Gs1ErrorKind::Syntax, "expected `(AI)`").at(position));
        };
        let ai = &rest[1..=close];
        let def = ai::lookup(ai).ok_or_else(|| unknown_ai(ai).at(position + 1))?;
        let value_start = position + close + 2;
        // A value may itself contain `(`; only `(` starting a known `(AI)` ends it.
        let value_len = text[value_start..]
            .match_indices('(')
            .map(|(i, _)| i)
            .find(|&i| starts_with_bracketed_ai(&text[value_start + i..]))
            .unwrap_or(text.len() - value_start);
        let value = &text[value_start..value_start + value_len];
        def.check_value(value)
            .map_err(|e| e.in_ai(ai).shifted(value_start))?;
        elements.push(Element {
            def,
            value: value.to_owned(),
        });
        position = value_start + value_len;
    }
    non_empty(elements)
}

fn starts_with_bracketed_ai(text: &str) -> bool {
    text.strip_prefix('(')
        .and_then(|r| r.split_once(')'))
        .is_some_and(|(ai, _)| {
            (2..=4).contains(&ai.len()) && ai.chars().all(|c| c.is_ascii_digit())
        })
}

fn parse_raw(text: &str) -> Result<ElementString> {
    let mut elements = Vec::new();
    let mut position = 0;
    let bytes = text.as_bytes();
    while position < text.len() {
        if bytes[position] == b'\x1d' {
            position += 1;
            continue;
        }
        let rest = &text[position..];
        let def = ai::lookup_prefix(rest).ok_or_else(|| {
            let shown: String = rest.chars().take(4).collect();
            Gs1Error::new(
                Gs1ErrorKind::UnknownAi,
                format!("no GS1 Application Identifier starts `{shown}`"),
            )
            .at(position)
        })?;
        let value_start = position + def.ai.len();
        let after_ai = &text[value_start..];
        let value_len = if def.predefined_length {
            def.max_len().min(after_ai.len())
        } else {
            after_ai.find(GS).unwrap_or(after_ai.len())
        };
        if !after_ai.is_char_boundary(value_len) {
            return Err(
                Gs1Error::new(Gs1ErrorKind::IllegalCharacter, "non-ASCII character")
                    .in_ai(&def.ai)
                    .at(value_start),
            );
        }
        let value = &after_ai[..value_len];
        def.check_value(value).map_err(|e| {
            let e = e.in_ai(&def.ai).shifted(value_start);
            if e.kind == Gs1ErrorKind::WrongLength && value.len() > def.max_len() {
                Gs1Error {
                    detail: format!("{} (is a GS separator missing after it?)", e.detail),
                    ..e
                }
            } else {
                e
            }
        })?;
        elements.push(Element {
            def,
            value: value.to_owned(),
        });
        position = value_start + value_len;
    }
    non_empty(elements)
}

/// The parsed elements as an element string; there must be at least one.
fn non_empty(elements: Vec<Element>) -> Result<ElementString, Gs1Error> {
    if elements.is_empty() {
        return Err(Gs1Error::new(Gs1ErrorKind::Syntax, "no elements"));
    }
    ElementString::new(elements)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BRACKETED: &str = "(01)09506000134352(17)261231(10)ABC(21)12345";

    #[test]
    fn both_forms_parse_to_the_same_elements() {
        let bracketed = ElementString::parse(BRACKETED).expect("bracketed");
        let raw =
            ElementString::parse("]d201095060001343521726123110ABC\u{1d}2112345").expect("raw");
        assert_eq!(bracketed, raw);
        assert_eq!(bracketed.gtin(), Some("09506000134352"));
        assert_eq!(bracketed.lot(), Some("ABC"));
        assert_eq!(bracketed.serial(), Some("12345"));
        assert_eq!(bracketed.expiry(), NaiveDate::from_ymd_opt(2026, 12, 31));
        assert_eq!(bracketed.to_bracketed(), BRACKETED);
        assert_eq!(
            ElementString::parse(&bracketed.to_raw()).expect("again"),
            bracketed
        );
    }

    #[test]
    fn repeated_identical_elements_are_kept_once() {
        let s = ElementString::parse("(01)09506000134352(10)A(10)A").expect("parse");
        assert_eq!(s.to_bracketed(), "(01)09506000134352(10)A");
        let err = ElementString::parse("(01)09506000134352(10)A(10)B").expect_err("conflict");
        assert_eq!(err.kind, Gs1ErrorKind::DuplicateAi);
    }

    #[test]
    fn decimals_and_parentheses_in_values() {
        let s = ElementString::parse("(01)09506000134352(3103)001250(10)A(B)C").expect("parse");
        assert_eq!(
            s.decimal("310").map(|d| d.to_string()).as_deref(),
            Some("1.250")
        );
        assert_eq!(s.lot(), Some("A(B)C"));
    }

    #[test]
    fn errors_name_ai_position_and_reason() {
        let cases = [
            (
                "(01)09506000134353",
                Gs1ErrorKind::BadCheckDigit,
                Some("01"),
                Some(17),
            ),
            (
                "(01)0950600013435",
                Gs1ErrorKind::WrongLength,
                Some("01"),
                Some(4),
            ),
            (
                "(01)09506000134352(21)AB CD",
                Gs1ErrorKind::IllegalCharacter,
                Some("21"),
                Some(24),
            ),
            (
                "(01)09506000134352(89)X",
                Gs1ErrorKind::UnknownAi,
                None,
                Some(19),
            ),
            (
                "(01)09506000134352(17)261301",
                Gs1ErrorKind::InvalidDate,
                Some("17"),
                Some(24),
            ),
            (
                "(21)12345",
                Gs1ErrorKind::MissingAssociation,
                Some("21"),
                None,
            ),
            (
                "(01)09506000134352(02)09506000134352",
                Gs1ErrorKind::InvalidCombination,
                Some("02"),
                None,
            ),
            (
                "0109506000134353",
                Gs1ErrorKind::BadCheckDigit,
                Some("01"),
                Some(15),
            ),
            (
                "01095060001343521012345678901234567890123",
                Gs1ErrorKind::WrongLength,
                Some("10"),
                Some(18),
            ),
            (
                "01095060001343528912",
                Gs1ErrorKind::UnknownAi,
                None,
                Some(16),
            ),
        ];
        for (input, kind, ai, position) in cases {
            let err = ElementString::parse(input).expect_err(input);
            assert_eq!(
                (err.kind, err.ai.as_deref(), err.position),
                (kind, ai, position),
                "{input}: {err}"
            );
        }
    }
}
