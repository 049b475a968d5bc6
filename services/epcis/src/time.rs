//! EPCIS timestamps: RFC 3339 date-times with an offset, converted to protobuf Timestamps.

use chrono::{DateTime, FixedOffset, SecondsFormat, TimeZone, Utc};

use crate::EpcisError;

/// An EPCIS date-time. The offset as written is kept in the model; protobuf keeps the instant.
pub type EpcisTime = DateTime<FixedOffset>;

/// Parses an EPCIS date-time (`xsd:dateTime` with a mandatory offset).
pub fn parse(field: &str, text: &str) -> Result<EpcisTime, EpcisError> {
    DateTime::parse_from_rfc3339(text).map_err(|err| {
        EpcisError::invalid(
            field,
            format!("`{text}` is not an RFC 3339 date-time with offset: {err}"),
        )
    })
}

/// Formats a date-time the way EPCIS documents write it, with the offset kept.
pub fn format(time: &EpcisTime) -> String {
    time.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// The protobuf form of a date-time (the instant, in UTC).
pub fn to_proto(time: &EpcisTime) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: time.timestamp(),
        // Always below 2e9, so the cast cannot truncate.
        nanos: time.timestamp_subsec_nanos() as i32,
    }
}

/// A date-time from its protobuf form, in UTC.
pub fn from_proto(field: &str, ts: &prost_types::Timestamp) -> Result<EpcisTime, EpcisError> {
    let nanos = u32::try_from(ts.nanos)
        .map_err(|_| EpcisError::invalid(field, "timestamp nanos must not be negative"))?;
    Utc.timestamp_opt(ts.seconds, nanos)
        .single()
        .map(|utc| utc.fixed_offset())
        .ok_or_else(|| EpcisError::invalid(field, "timestamp is out of range"))
}

/// Checks an `eventTimeZoneOffset` value (`+HH:MM` / `-HH:MM`).
pub fn check_offset(field: &str, text: &str) -> Result<(), EpcisError> {
    let bytes = text.as_bytes();
    let well_formed = bytes.len() == 6
        && (bytes[0] == b'+' || bytes[0] == b'-')
        && bytes[1].is_ascii_digit()
        && bytes[2].is_ascii_digit()
        && bytes[3] == b':'
        && bytes[4].is_ascii_digit()
        && bytes[5].is_ascii_digit();
    if well_formed {
        Ok(())
    } else {
        Err(EpcisError::invalid(
            field,
            format!("`{text}` is not a time zone offset like +01:00"),
        ))
    }
}
