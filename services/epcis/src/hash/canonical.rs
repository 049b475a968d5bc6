//! Canonical spellings of values in the pre-hash string: CBV web URIs, numbers, UTC
//! timestamps at millisecond precision, and Digital Links for GS1 identifiers.

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};

use super::digital_link;

/// A value's canonical form: CBV 1.x URNs become web URIs, numbers lose redundant
/// digits, and GS1 identifiers become canonical Digital Links.
pub fn value(text: &str) -> String {
    let text = web_vocabulary(text);
    let text = number(&text).unwrap_or(text);
    digital_link::normalise(&text).unwrap_or(text)
}

fn web_vocabulary(text: &str) -> String {
    const URNS: [(&str, &str); 5] = [
        (
            "urn:epcglobal:cbv:bizstep:",
            "https://ref.gs1.org/cbv/BizStep-",
        ),
        ("urn:epcglobal:cbv:disp:", "https://ref.gs1.org/cbv/Disp-"),
        ("urn:epcglobal:cbv:btt:", "https://ref.gs1.org/cbv/BTT-"),
        ("urn:epcglobal:cbv:sdt:", "https://ref.gs1.org/cbv/SDT-"),
        ("urn:epcglobal:cbv:er:", "https://ref.gs1.org/cbv/ER-"),
    ];
    URNS.iter()
        .fold(text.to_owned(), |text, (urn, web)| text.replace(urn, web))
}

/// A number written the way the reference implementation writes it: integral values
/// without a fraction, others in the shortest form that reads back the same.
fn number(text: &str) -> Option<String> {
    let value: f64 = text.parse().ok()?;
    if !value.is_finite() {
        return None;
    }
    if value.fract() == 0.0 {
        // Exact for every integral double, however large.
        let integral = format!("{value:.0}");
        return Some(if integral == "-0" {
            "0".into()
        } else {
            integral
        });
    }
    Some(shortest_float(value))
}

/// The shortest round-trip spelling, switching to exponent form below 1e-4 and from 1e16
/// (the convention of the hash's reference implementation).
pub fn shortest_float(value: f64) -> String {
    let scientific = format!("{value:e}");
    let Some((mantissa, exponent)) = scientific.split_once('e') else {
        return scientific;
    };
    let exponent: i32 = exponent.parse().unwrap_or_default();
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    if (-4..16).contains(&exponent) {
        let point = exponent + 1;
        let text = if point <= 0 {
            format!("0.{}{digits}", "0".repeat(point.unsigned_abs() as usize))
        } else {
            let point = point as usize;
            let padded = format!("{digits:0<point$}");
            let (whole, fraction) = padded.split_at(point);
            let fraction = if fraction.is_empty() { "0" } else { fraction };
            format!("{whole}.{fraction}")
        };
        return format!("{sign}{text}");
    }
    let (first, rest) = digits.split_at(1);
    let mantissa = if rest.is_empty() {
        first.to_owned()
    } else {
        format!("{first}.{rest}")
    };
    let exponent_sign = if exponent < 0 { '-' } else { '+' };
    format!("{sign}{mantissa}e{exponent_sign}{:02}", exponent.abs())
}

/// A timestamp in UTC at millisecond precision (`2020-03-04T10:00:30.000Z`), rounding
/// half to even on the microseconds; text that is not a timestamp stays as it is.
pub fn timestamp(text: &str) -> String {
    let Some(instant) = parse_instant(text) else {
        return text.to_owned();
    };
    let micros = i64::from(instant.timestamp_subsec_micros());
    let millis = round_half_even(micros, 1000) / 1000;
    let whole_seconds = instant.timestamp();
    let Some(rounded) = DateTime::<Utc>::from_timestamp(whole_seconds, 0)
        .map(|t| t + chrono::Duration::milliseconds(millis))
    else {
        return text.to_owned();
    };
    rounded.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn parse_instant(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Some(time.with_timezone(&Utc));
    }
    // No offset: read as UTC, the zone every Tracery process runs in.
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
        .map(|naive| naive.and_utc())
}

fn round_half_even(value: i64, step: i64) -> i64 {
    let (quotient, remainder) = (value / step, value % step);
    let twice = remainder * 2;
    let up = twice > step || (twice == step && quotient % 2 == 1);
    (quotient + i64::from(up)) * step
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_lose_redundant_digits() {
        assert_eq!(value("200.0"), "200");
        assert_eq!(value("+05"), "5");
        assert_eq!(value("26.50"), "26.5");
        assert_eq!(value("0.00001"), "1e-05");
        assert_eq!(value("1.5e17"), "150000000000000000");
        assert_eq!(value("OBSERVE"), "OBSERVE");
    }

    #[test]
    fn short_floats_follow_the_reference_convention() {
        assert_eq!(shortest_float(0.1), "0.1");
        assert_eq!(shortest_float(-12.25), "-12.25");
        assert_eq!(shortest_float(1.5e-7), "1.5e-07");
        assert_eq!(shortest_float(1.5e16), "1.5e+16");
    }

    #[test]
    fn cbv_urns_become_web_uris() {
        assert_eq!(
            value("urn:epcglobal:cbv:bizstep:shipping"),
            "https://ref.gs1.org/cbv/BizStep-shipping"
        );
    }

    #[test]
    fn timestamps_go_to_utc_milliseconds() {
        assert_eq!(
            timestamp("2020-03-04T11:00:30+01:00"),
            "2020-03-04T10:00:30.000Z"
        );
        assert_eq!(
            timestamp("2022-02-15T01:33:31.116000-06:00"),
            "2022-02-15T07:33:31.116Z"
        );
        assert_eq!(
            timestamp("2022-02-15T01:33:31.1165-06:00"),
            "2022-02-15T07:33:31.116Z"
        );
        assert_eq!(
            timestamp("2022-02-15T01:33:31.9995Z"),
            "2022-02-15T01:33:32.000Z"
        );
        assert_eq!(timestamp("not a time"), "not a time");
    }
}
