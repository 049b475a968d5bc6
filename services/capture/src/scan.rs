//! Compact scan messages from fixed readers, as they arrive over MQTT:
//! `{"reader": "dock-1", "code": "]d2010950…", "time": "2026-11-26T10:00:00+01:00"}`. The code is
//! whatever the scanner read — a raw GS1 element string or a Digital Link — and becomes an
//! ObjectEvent OBSERVE at the reader's configured readPoint and bizStep.

use std::collections::BTreeMap;

use chrono::{DateTime, FixedOffset, Utc};
use sha2::{Digest, Sha256};
use tracery_epcis::{Action, Event, EventKind, Location, ObjectEvent, QuantityElement};
use tracery_runtime::{config::ReaderSettings, error::Violation};

/// Whether a JSON message looks like a scan message rather than an EPCIS event.
pub fn is_scan(value: &serde_json::Value) -> bool {
    value.get("reader").is_some() && value.get("code").is_some()
}

/// The event a scan message stands for, or every reason it cannot be one.
///
/// A scan with a `time` gets an eventID derived from the message bytes, so a message the
/// broker delivers twice is stored once. A scan without one happened when it reached us:
/// it is stamped `received_at` and gets an eventID of its own, so two genuine identical
/// scans are two events (a reader with `require_time` has such scans quarantined instead).
pub fn to_event(
    message: &[u8],
    value: &serde_json::Value,
    readers: &BTreeMap<String, ReaderSettings>,
    received_at: DateTime<Utc>,
) -> Result<Event, Vec<Violation>> {
    let text = |key: &str| value.get(key).and_then(|v| v.as_str()).unwrap_or_default();
    let mut violations = Vec::new();
    let reader = readers.get(text("reader"));
    if reader.is_none() {
        violations.push(
            Violation::new(
                "reader",
                format!("`{}` is not a configured reader", text("reader")),
            )
            .with_reason("UNKNOWN_READER"),
        );
    }
    let time: Option<DateTime<FixedOffset>> = match text("time") {
        "" if reader.is_some_and(|r| r.require_time) => {
            violations.push(
                Violation::new("time", "this reader's scans must say when they were read")
                    .with_reason("MALFORMED_MESSAGE"),
            );
            None
        }
        "" => Some(received_at.fixed_offset()),
        written => {
            let parsed = DateTime::parse_from_rfc3339(written).ok();
            if parsed.is_none() {
                violations.push(
                    Violation::new("time", "not an RFC 3339 date-time with offset")
                        .with_reason("MALFORMED_MESSAGE"),
                );
            }
            parsed
        }
    };
    let what = match tracery_gs1::parse_any(text("code").trim()) {
        Ok(parsed) => match parsed.identifier {
            // A Digital Link is a valid EPCIS 2.0 identifier and needs no company prefix
            // length; a serial names an instance, a lot-level code a class.
            Some(identifier) => match identifier.canonical_link() {
                Ok(link) => Some((identifier.is_instance(), link)),
                Err(err) => {
                    violations
                        .push(Violation::new("code", err.to_string()).with_reason(err.kind.code()));
                    None
                }
            },
            None => {
                violations.push(
                    Violation::new("code", "holds no GS1 key (GTIN, SSCC, GRAI, ...)")
                        .with_reason("NO_GS1_KEY"),
                );
                None
            }
        },
        Err(err) => {
            violations.push(Violation::new("code", err.to_string()).with_reason(err.kind.code()));
            None
        }
    };
    let (Some(reader), Some(time), Some((instance, uri))) = (reader, time, what) else {
        return Err(violations);
    };
    let event_id = if text("time").is_empty() {
        uuid::Uuid::now_v7().urn().to_string()
    } else {
        message_event_id(message)
    };
    let (epcs, quantities) = if instance {
        (vec![uri], Vec::new())
    } else {
        (
            Vec::new(),
            vec![QuantityElement {
                epc_class: uri,
                quantity: None,
                uom: None,
            }],
        )
    };
    let location = |id: &Option<String>| {
        id.as_ref().map(|id| Location {
            id: id.clone(),
            extensions: Default::default(),
        })
    };
    Ok(Event {
        event_id: Some(event_id),
        event_time: time,
        event_time_zone_offset: time.format("%:z").to_string(),
        record_time: None,
        certification_info: None,
        error_declaration: None,
        biz_step: reader.biz_step.clone(),
        disposition: reader.disposition.clone(),
        persistent_disposition: None,
        read_point: location(&Some(reader.read_point.clone())),
        biz_location: location(&reader.biz_location),
        biz_transactions: Vec::new(),
        sources: Vec::new(),
        destinations: Vec::new(),
        sensor_elements: Vec::new(),
        extensions: Default::default(),
        kind: EventKind::Object(ObjectEvent {
            action: Action::Observe,
            epcs,
            quantities,
            ilmd: None,
        }),
    })
}

/// An eventID that is the same for the same message bytes (a UUID-shaped SHA-256 prefix).
fn message_event_id(message: &[u8]) -> String {
    let digest = Sha256::digest(message);
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}
