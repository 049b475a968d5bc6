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

/// `(ai, format spec, title)` for every AI with a fixed AI string.
const TABLE: &[(&str, &str, &str)] = &[
    ("00", "N18,csum", "SSCC"),
    ("01", "N14,csum", "GTIN"),
    ("02", "N14,csum", "CONTENT"),
    ("03", "N14,csum", "MTO GTIN"),
    ("10", "X..20", "BATCH/LOT"),
    ("11", "N6,date0", "PROD DATE"),
    ("12", "N6,date0", "DUE DATE"),
    ("13", "N6,date0", "PACK DATE"),
    ("15", "N6,date0", "BEST BEFORE or BEST BY"),
    ("16", "N6,date0", "SELL BY"),
    ("17", "N6,date0", "USE BY or EXPIRY"),
    ("20", "N2", "VARIANT"),
    ("21", "X..20", "SERIAL"),
    ("22", "X..20", "CPV"),
    ("235", "X..28", "TPX"),
    ("240", "X..30", "ADDITIONAL ID"),
    ("241", "X..30", "CUST. PART No."),
    ("242", "N..6", "MTO VARIANT"),
    ("243", "X..20", "PCN"),
    ("250", "X..30", "SECONDARY SERIAL"),
    ("251", "X..30", "REF. TO SOURCE"),
    ("253", "N13,csum [X..17]", "GDTI"),
    ("254", "X..20", "GLN EXTENSION COMPONENT"),
    ("255", "N13,csum [N..12]", "GCN"),
    ("30", "N..8", "VAR. COUNT"),
    ("37", "N..8", "COUNT"),
    ("400", "X..30", "ORDER NUMBER"),
    ("401", "X..30", "GINC"),
    ("402", "N17,csum", "GSIN"),
    ("403", "X..30", "ROUTE"),
    ("410", "N13,csum", "SHIP TO LOC"),
    ("411", "N13,csum", "BILL TO"),
    ("412", "N13,csum", "PURCHASE FROM"),
    ("413", "N13,csum", "SHIP FOR LOC"),
    ("414", "N13,csum", "LOC No."),
    ("415", "N13,csum", "PAY TO"),
    ("416", "N13,csum", "PROD/SERV LOC"),
    ("417", "N13,csum", "PARTY"),
    ("420", "X..20", "SHIP TO POST"),
    ("421", "N3 X..9", "SHIP TO POST"),
    ("422", "N3", "ORIGIN"),
    ("423", "N3 [N3] [N3] [N3] [N3]", "COUNTRY - INITIAL PROCESS"),
    ("424", "N3", "COUNTRY - PROCESS"),
    ("425", "N3 [N3] [N3] [N3] [N3]", "COUNTRY - DISASSEMBLY"),
    ("426", "N3", "COUNTRY - FULL PROCESS"),
    ("427", "X..3", "ORIGIN SUBDIVISION"),
    ("4300", "X..35", "SHIP TO COMP"),
    ("4301", "X..35", "SHIP TO NAME"),
    ("4302", "X..70", "SHIP TO ADD1"),
    ("4303", "X..70", "SHIP TO ADD2"),
    ("4304", "X..70", "SHIP TO SUB"),
    ("4305", "X..70", "SHIP TO LOC"),
    ("4306", "X..70", "SHIP TO REG"),
    ("4307", "X2", "SHIP TO COUNTRY"),
    ("4308", "X..30", "SHIP TO PHONE"),
    ("4309", "N10 N10", "SHIP TO GEO"),
    ("4310", "X..35", "RTN TO COMP"),
    ("4311", "X..35", "RTN TO NAME"),
    ("4312", "X..70", "RTN TO ADD1"),
    ("4313", "X..70", "RTN TO ADD2"),
    ("4314", "X..70", "RTN TO SUB"),
    ("4315", "X..70", "RTN TO LOC"),
    ("4316", "X..70", "RTN TO REG"),
    ("4317", "X2", "RTN TO COUNTRY"),
    ("4318", "X..20", "RTN TO POST"),
    ("4319", "X..30", "RTN TO PHONE"),
    ("4320", "X..35", "SRV DESCRIPTION"),
    ("4321", "N1", "DANGEROUS GOODS"),
    ("4322", "N1", "AUTH LEAVE"),
    ("4323", "N1", "SIG REQUIRED"),
    ("4324", "N6,date0 N4,hhmi", "NOT BEF DEL DT"),
    ("4325", "N6,date0 N4,hhmi", "NOT AFT DEL DT"),
    ("4326", "N6,date", "REL DATE"),
    ("4330", "N6 [X1]", "MAX TEMP F"),
    ("4331", "N6 [X1]", "MAX TEMP C"),
    ("4332", "N6 [X1]", "MIN TEMP F"),
    ("4333", "N6 [X1]", "MIN TEMP C"),
    ("7001", "N13", "NSN"),
    ("7002", "X..30", "MEAT CUT"),
    ("7003", "N6,date N4,hhmi", "EXPIRY TIME"),
    ("7004", "N..4", "ACTIVE POTENCY"),
    ("7005", "X..12", "CATCH AREA"),
    ("7006", "N6,date", "FIRST FREEZE DATE"),
    ("7007", "N6,date [N6,date]", "HARVEST DATE"),
    ("7008", "X..3", "AQUATIC SPECIES"),
    ("7009", "X..10", "FISHING GEAR TYPE"),
    ("7010", "X..2", "PROD METHOD"),
    ("7011", "N6,date [N4,hhmi]", "TEST BY DATE"),
    ("7020", "X..20", "REFURB LOT"),
    ("7021", "X..20", "FUNC STAT"),
    ("7022", "X..20", "REV STAT"),
    ("7023", "X..30", "GIAI - ASSEMBLY"),
    ("7040", "N1 X1 X1 X1", "UIC+EXT"),
    ("7041", "X..4", "UFRGT UNIT TYPE"),
    ("7240", "X..20", "PROTOCOL"),
    ("7241", "N2", "AIDC MEDIA TYPE"),
    ("7242", "X..25", "VCN"),
    ("7250", "N8", "DOB"),
    ("7251", "N8 N4,hhmi", "DOB TIME"),
    ("7252", "N1", "BIO SEX"),
    ("7253", "X..40", "FAMILY NAME"),
    ("7254", "X..40", "GIVEN NAME"),
    ("7255", "X..10", "SUFFIX"),
    ("7256", "X..90", "FULL NAME"),
    ("7257", "X..70", "PERSON ADDR"),
    ("7258", "X3", "BIRTH SEQUENCE"),
    ("7259", "X..40", "BABY"),
    ("8001", "N14", "DIMENSIONS"),
    ("8002", "X..20", "CMT No."),
    ("8003", "N1,zero N13,csum [X..16]", "GRAI"),
    ("8004", "X..30", "GIAI"),
    ("8005", "N6", "PRICE PER UNIT"),
    ("8006", "N14,csum N4", "ITIP"),
    ("8007", "X..34", "IBAN"),
    ("8008", "N6,date N2,hh [N2,mi] [N2,mi]", "PROD TIME"),
    ("8009", "X..50", "OPTSEN"),
    ("8010", "Y..30", "CPID"),
    ("8011", "N..12", "CPID SERIAL"),
    ("8012", "X..20", "VERSION"),
    ("8013", "X..25", "GMN"),
    ("8014", "X..25", "MUDI"),
    ("8017", "N18,csum", "GSRN - PROVIDER"),
    ("8018", "N18,csum", "GSRN - RECIPIENT"),
    ("8019", "N..10", "SRIN"),
    ("8020", "X..25", "REF No."),
    ("8026", "N14,csum N4", "ITIP CONTENT"),
    ("8030", "Z..90", "DIGSIG"),
    ("8110", "X..70", "-"),
    ("8111", "N4", "POINTS"),
    ("8112", "X..70", "-"),
    ("8200", "X..70", "PRODUCT URL"),
    ("90", "X..30", "INTERNAL"),
];

/// AI families whose last digit varies: `(prefix, last digits, spec, title, decimal places)`.
const FAMILIES: &[(&str, &str, &str, &str, bool)] = &[
    ("71", "0123456", "X..20", "NHRN", false),
    ("703", "0123456789", "N3 X..27", "PROCESSOR # s", false),
    ("723", "0123456789", "X2 X..28", "CERT # s", false),
    ("9", "123456789", "X..90", "INTERNAL", false),
    ("390", "0123456789", "N..15", "AMOUNT", true),
    ("391", "0123456789", "N3 N..15", "AMOUNT", true),
    ("392", "0123456789", "N..15", "PRICE", true),
    ("393", "0123456789", "N3 N..15", "PRICE", true),
    ("394", "0123", "N4", "PRCNT OFF", true),
    ("395", "012345", "N6", "PRICE/UoM", true),
];

/// The measure AIs 31nn–36nn (N6, n implied decimal places), by their three-digit prefixes.
const MEASURE_PREFIXES: &[(u16, u16, &str)] = &[
    (310, 316, "TRADE MEASURE"),
    (320, 337, "MEASURE"),
    (340, 357, "LOGISTIC MEASURE"),
    (360, 369, "MEASURE"),
];

/// Two-digit AI prefixes whose AIs have a predefined length (GS1 General Specifications
/// Figure 7.8.5-2): no FNC1 separator follows them.
const PREDEFINED_LENGTH_PREFIXES: &[&str] = &[
    "00", "01", "02", "03", "04", "11", "12", "13", "14", "15", "16", "17", "18", "19", "20", "31",
    "32", "33", "34", "35", "36", "41",
];

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
