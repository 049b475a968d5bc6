//! The GS1 Application Identifier table and the checks of one AI's value.
//!
//! Each AI is described by a compact format spec modelled on the GS1 General Specifications
//! (§3.2) and the GS1 Barcode Syntax Dictionary: space-separated components, each a charset
//! letter (`N` digits, `X` set 82, `Y` set 39, `Z` set 64) with a fixed (`N13`) or maximum
//! (`X..20`) length, `[...]` for optional trailing components and `,flag` for checks
//! (`csum` check digit, `date` YYMMDD, `date0` YYMMDD where DD may be 00, `hh` hour, `hhmi`
//! hour and minute, `mi` minute or second, `zero` a literal 0).

use std::{collections::HashMap, sync::LazyLock};

use chrono::{Datelike, NaiveDate};

mod table;

use table::{FAMILIES, MEASURE_PREFIXES, PREDEFINED_LENGTH_PREFIXES, TABLE};

use crate::{
    charset::{Charset, verify_check_digit},
    error::{Gs1Error, Gs1ErrorKind, Result},
};

/// The extra rule a component's value must follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Only the character set.
    None,
    /// The last digit is a GS1 mod-10 check digit.
    CheckDigit,
    /// YYMMDD; `day_zero` allows DD = 00 ("end of the month").
    Date {
        /// Whether DD = 00 is allowed.
        day_zero: bool,
    },
    /// HH, 00 to 23.
    Hour,
    /// HHMM, 0000 to 2359.
    HourMinute,
    /// MM or SS, 00 to 59.
    MinuteOrSecond,
    /// The single digit 0 (the padding digit of GRAI in AI 8003).
    Zero,
}

/// One part of an AI's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Component {
    /// Allowed characters.
    pub charset: Charset,
    /// Minimum length (equal to `max` for fixed-length components).
    pub min: usize,
    /// Maximum length.
    pub max: usize,
    /// Whether the component may be left out (only ever the last one).
    pub optional: bool,
    /// Extra rule.
    pub check: Check,
}

/// One Application Identifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AiDef {
    /// The AI digits, e.g. `01`, `3103`.
    pub ai: String,
    /// GS1 data title, e.g. `GTIN`, `NET WEIGHT (kg)`.
    pub title: &'static str,
    /// The value's parts.
    pub components: Vec<Component>,
    /// Implied decimal places for the 31nn–39nn measure and amount AIs.
    pub decimals: Option<u8>,
    /// Whether GS1 predefines the length, so no FNC1 separator follows the value.
    pub predefined_length: bool,
}

impl AiDef {
    /// Shortest valid value length.
    pub fn min_len(&self) -> usize {
        self.components
            .iter()
            .filter(|c| !c.optional)
            .map(|c| c.min)
            .sum()
    }

    /// Longest valid value length.
    pub fn max_len(&self) -> usize {
        self.components.iter().map(|c| c.max).sum()
    }

    /// Whether every component has a fixed length.
    pub fn is_fixed_length(&self) -> bool {
        self.components
            .iter()
            .all(|c| c.min == c.max && !c.optional)
    }

    /// Checks `value` against the components; error positions are offsets into `value`.
    pub fn check_value(&self, value: &str) -> Result<()> {
        let err = |e: Gs1Error| e.in_ai(&self.ai);
        if !value.is_ascii() {
            let position = value.chars().take_while(char::is_ascii).count();
            return Err(err(Gs1Error::new(
                Gs1ErrorKind::IllegalCharacter,
                "only ASCII characters are allowed",
            )
            .at(position)));
        }
        let (min, max) = (self.min_len(), self.max_len());
        if value.len() < min || value.len() > max {
            let expected = if min == max {
                format!("{min}")
            } else {
                format!("{min} to {max}")
            };
            return Err(err(Gs1Error::new(
                Gs1ErrorKind::WrongLength,
                format!(
                    "{} value has {} characters, expected {expected}",
                    self.title,
                    value.len()
                ),
            )
            .at(0)));
        }
        let mut offset = 0;
        for (index, component) in self.components.iter().enumerate() {
            let rest = &value[offset..];
            if rest.is_empty() && component.optional {
                break;
            }
            let is_last = index + 1 == self.components.len();
            let take = if is_last {
                rest.len()
            } else {
                component.max.min(rest.len())
            };
            let part = &rest[..take];
            if part.len() < component.min || part.len() > component.max {
                return Err(err(Gs1Error::new(
                    Gs1ErrorKind::WrongLength,
                    format!(
                        "component {} has {} characters, expected {}..{}",
                        index + 1,
                        part.len(),
                        component.min,
                        component.max
                    ),
                )
                .at(offset)));
            }
            check_component(component, part).map_err(|e| err(e.shifted(offset)))?;
            offset += take;
        }
        Ok(())
    }
}

fn check_component(component: &Component, part: &str) -> Result<()> {
    component.charset.check(part)?;
    match component.check {
        Check::None => Ok(()),
        Check::CheckDigit => verify_check_digit(part),
        Check::Date { day_zero } => parse_date(part, day_zero).map(|_| ()),
        Check::Hour => check_range(part, 0, 23, "hour"),
        Check::HourMinute => {
            check_range(&part[..2], 0, 23, "hour")?;
            check_range(&part[2..], 0, 59, "minute").map_err(|e| e.shifted(2))
        }
        Check::MinuteOrSecond => check_range(part, 0, 59, "minute or second"),
        Check::Zero if part == "0" => Ok(()),
        Check::Zero => Err(Gs1Error::new(Gs1ErrorKind::Syntax, "must be 0")),
    }
}

fn check_range(digits: &str, min: u32, max: u32, what: &str) -> Result<()> {
    match digits.parse::<u32>() {
        Ok(value) if (min..=max).contains(&value) => Ok(()),
        _ => Err(Gs1Error::new(
            Gs1ErrorKind::InvalidDate,
            format!("{what} {digits} is outside {min:02} to {max:02}"),
        )
        .at(0)),
    }
}

/// Parses a GS1 YYMMDD date.
///
/// The century follows GS1 General Specifications §7.12: a year more than 50 years ahead of
/// today belongs to the previous century, one 50 or more years behind to the next. With
/// `day_zero`, DD = 00 means the last day of the month.
pub fn parse_date(yymmdd: &str, day_zero: bool) -> Result<NaiveDate> {
    let field =
        |range: std::ops::Range<usize>| yymmdd.get(range).and_then(|s| s.parse::<u32>().ok());
    let (Some(yy), Some(month), Some(day)) = (field(0..2), field(2..4), field(4..6)) else {
        return Err(Gs1Error::new(Gs1ErrorKind::InvalidDate, "expected YYMMDD"));
    };
    if !(1..=12).contains(&month) {
        return Err(Gs1Error::new(
            Gs1ErrorKind::InvalidDate,
            format!("month {month:02} does not exist"),
        )
        .at(2));
    }
    let year = full_year(yy);
    let last_day = last_day_of_month(year, month);
    let day = match day {
        0 if day_zero => last_day,
        0 => {
            return Err(Gs1Error::new(
                Gs1ErrorKind::InvalidDate,
                "day 00 is only allowed in expiry-style dates",
            )
            .at(4));
        }
        d if d > last_day => {
            return Err(Gs1Error::new(
                Gs1ErrorKind::InvalidDate,
                format!("day {d:02} does not exist in {year}-{month:02}"),
            )
            .at(4));
        }
        d => d,
    };
    NaiveDate::from_ymd_opt(year, month, day)
        .ok_or_else(|| Gs1Error::new(Gs1ErrorKind::InvalidDate, "date does not exist"))
}

fn full_year(yy: u32) -> i32 {
    let this_year = chrono::Utc::now().year();
    let century = this_year - this_year.rem_euclid(100);
    let yy = i32::try_from(yy).unwrap_or_default();
    match yy - this_year.rem_euclid(100) {
        51..=99 => century - 100 + yy,
        -99..=-50 => century + 100 + yy,
        _ => century + yy,
    }
}

fn last_day_of_month(year: i32, month: u32) -> u32 {
    let (next_year, next_month) = if month == 12 {
        (year + 1, 1)
    } else {
        (year, month + 1)
    };
    NaiveDate::from_ymd_opt(next_year, next_month, 1)
        .and_then(|d| d.pred_opt())
        .map_or(28, |d| d.day())
}

fn parse_spec(spec: &str) -> Vec<Component> {
    spec.split(' ')
        .map(|token| {
            let optional = token.starts_with('[');
            let token = token.trim_matches(|c| c == '[' || c == ']');
            let mut parts = token.split(',');
            let format = parts.next().unwrap_or_default();
            let charset = match format.chars().next() {
                Some('N') => Charset::Numeric,
                Some('Y') => Charset::Cset39,
                Some('Z') => Charset::Cset64,
                _ => Charset::Cset82,
            };
            let (min, max) = match format[1..].strip_prefix("..") {
                Some(max) => (1, max.parse().unwrap_or(1)),
                None => {
                    let len = format[1..].parse().unwrap_or(1);
                    (len, len)
                }
            };
            let check = match parts.next() {
                Some("csum") => Check::CheckDigit,
                Some("date") => Check::Date { day_zero: false },
                Some("date0") => Check::Date { day_zero: true },
                Some("hh") => Check::Hour,
                Some("hhmi") => Check::HourMinute,
                Some("mi") => Check::MinuteOrSecond,
                Some("zero") => Check::Zero,
                _ => Check::None,
            };
            Component {
                charset,
                min,
                max,
                optional,
                check,
            }
        })
        .collect()
}

fn definition(ai: String, spec: &str, title: &'static str, decimals: Option<u8>) -> AiDef {
    let predefined_length = PREDEFINED_LENGTH_PREFIXES.contains(&&ai[..2]);
    AiDef {
        components: parse_spec(spec),
        title,
        decimals,
        predefined_length,
        ai,
    }
}

static AI_TABLE: LazyLock<HashMap<String, AiDef>> = LazyLock::new(|| {
    let mut table = HashMap::new();
    let mut add = |def: AiDef| {
        table.insert(def.ai.clone(), def);
    };
    for &(ai, spec, title) in TABLE {
        add(definition(ai.to_owned(), spec, title, None));
    }
    for &(prefix, digits, spec, title, decimal) in FAMILIES {
        for (n, digit) in digits.chars().enumerate() {
            let decimals = decimal.then(|| u8::try_from(n).unwrap_or_default());
            add(definition(
                format!("{prefix}{digit}"),
                spec,
                title,
                decimals,
            ));
        }
    }
    for &(first, last, title) in MEASURE_PREFIXES {
        for prefix in first..=last {
            for n in 0..=5u8 {
                add(definition(format!("{prefix}{n}"), "N6", title, Some(n)));
            }
        }
    }
    table
});

/// The definition of `ai`, if GS1 defines it.
pub fn lookup(ai: &str) -> Option<&'static AiDef> {
    AI_TABLE.get(ai)
}

/// The AI at the start of `text` (AIs are prefix-free, so at most one matches).
pub fn lookup_prefix(text: &str) -> Option<&'static AiDef> {
    (2..=4).filter_map(|len| text.get(..len)).find_map(lookup)
}

/// Every defined AI (for tests and documentation).
pub fn all() -> impl Iterator<Item = &'static AiDef> {
    AI_TABLE.values()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_prefix_free() {
        for def in all() {
            for len in 2..def.ai.len() {
                assert!(
                    lookup(&def.ai[..len]).is_none(),
                    "{} is a prefix of {}",
                    &def.ai[..len],
                    def.ai
                );
            }
        }
    }

    #[test]
    fn predefined_lengths_are_fixed() {
        for def in all().filter(|d| d.predefined_length) {
            assert!(def.is_fixed_length(), "{} has a predefined length", def.ai);
        }
        assert!(lookup("3103").is_some_and(|d| d.decimals == Some(3)));
        assert!(lookup("17").is_some_and(|d| d.predefined_length));
        assert!(lookup("10").is_some_and(|d| !d.predefined_length));
    }

    #[test]
    fn dates() {
        assert_eq!(
            parse_date("261231", false).ok(),
            NaiveDate::from_ymd_opt(2026, 12, 31)
        );
        assert_eq!(
            parse_date("260200", true).ok(),
            NaiveDate::from_ymd_opt(2026, 2, 28)
        );
        assert_eq!(
            parse_date("280200", true).ok(),
            NaiveDate::from_ymd_opt(2028, 2, 29)
        );
        assert_eq!(
            parse_date("990101", false).ok(),
            NaiveDate::from_ymd_opt(1999, 1, 1)
        );
        for (bad, position) in [("261301", 2), ("260231", 4), ("260100", 4)] {
            let err = parse_date(bad, false).expect_err(bad);
            assert_eq!(
                (err.kind, err.position),
                (Gs1ErrorKind::InvalidDate, Some(position))
            );
        }
    }

    #[test]
    fn value_checks_point_at_the_problem() {
        let gdti = lookup("253").expect("GDTI");
        let key = crate::charset::with_check_digit("405000000000").expect("digits");
        assert!(gdti.check_value(&format!("{key}ABC")).is_ok());
        let err = gdti
            .check_value("4050000000009ABC")
            .expect_err("bad check digit");
        assert_eq!(
            (err.kind, err.position),
            (Gs1ErrorKind::BadCheckDigit, Some(12))
        );
        let grai = lookup("8003").expect("GRAI");
        let err = grai
            .check_value("10614141000010ABC")
            .expect_err("leading digit must be 0");
        assert_eq!(err.kind, Gs1ErrorKind::Syntax);
        let serial = lookup("21").expect("serial");
        let err = serial.check_value("AB C").expect_err("space");
        assert_eq!(
            (err.kind, err.position, err.ai.as_deref()),
            (Gs1ErrorKind::IllegalCharacter, Some(2), Some("21"))
        );
    }
}
