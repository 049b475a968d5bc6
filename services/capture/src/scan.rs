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
    let reader = configured_reader(readers, text("reader")).map_err(|v| violations.push(v));
    let require_time = reader.as_ref().is_ok_and(|r| r.require_time);
    let time = scan_time(text("time"), require_time, received_at).map_err(|v| violations.push(v));
    let what = scanned(text("code")).map_err(|v| violations.push(v));
    let (Ok(reader), Ok(time), Ok(what)) = (reader, time, what) else {
        return Err(violations);
    };
    let event_id = if text("time").is_empty() {
        uuid::Uuid::now_v7().urn().to_string()
    } else {
        message_event_id(message)
    };
    Ok(observation(reader, time, what, event_id))
}

fn configured_reader<'a>(
    readers: &'a BTreeMap<String, ReaderSettings>,
    name: &str,
) -> Result<&'a ReaderSettings, Violation> {
    readers.get(name).ok_or_else(|| {
        Violation::new("reader", format!("`{name}` is not a configured reader"))
            .with_reason("UNKNOWN_READER")
    })
}

/// When the scan happened: its `time`, or when it reached us if it has none (and its
/// reader does not require one).
fn scan_time(
    written: &str,
    require_time: bool,
    received_at: DateTime<Utc>,
) -> Result<DateTime<FixedOffset>, Violation> {
    let malformed = |why: &str| Violation::new("time", why).with_reason("MALFORMED_MESSAGE");
    match written {
        "" if require_time => Err(malformed(
            "this reader's scans must say when they were read",
        )),
        "" => Ok(received_at.fixed_offset()),
        written => DateTime::parse_from_rfc3339(written)
            .map_err(|_| malformed("not an RFC 3339 date-time with offset")),
    }
}

/// What was scanned: an instance (a serial) or a class (a lot), as a Digital Link.
struct Scanned {
    instance: bool,
    uri: String,
}

/// The scanned code (a GS1 element string or a Digital Link) as a Digital Link, which is
/// a valid EPCIS 2.0 identifier and needs no company prefix length.
fn scanned(code: &str) -> Result<Scanned, Violation> {
    let parsed = tracery_gs1::parse_any(code.trim())
        .map_err(|err| Violation::new("code", err.to_string()).with_reason(err.kind.code()))?;
    let identifier = parsed.identifier.ok_or_else(|| {
        Violation::new("code", "holds no GS1 key (GTIN, SSCC, GRAI, ...)").with_reason("NO_GS1_KEY")
    })?;
    let uri = identifier
        .canonical_link()
        .map_err(|err| Violation::new("code", err.to_string()).with_reason(err.kind.code()))?;
    Ok(Scanned {
        instance: identifier.is_instance(),
        uri,
    })
}

/// An ObjectEvent OBSERVE of `what` at `reader`'s place, with its bizStep and disposition.
fn observation(
    reader: &ReaderSettings,
    time: DateTime<FixedOffset>,
    what: Scanned,
    event_id: String,
) -> Event {
    let (epcs, quantities) = if what.instance {
        (vec![what.uri], Vec::new())
    } else {
        let class = QuantityElement {
            epc_class: what.uri,
            quantity: None,
            uom: None,
        };
        (Vec::new(), vec![class])
    };
    let location = |id: &str| Location {
        id: id.to_owned(),
        extensions: Default::default(),
    };
    let observed = EventKind::Object(ObjectEvent {
        action: Action::Observe,
        epcs,
        quantities,
        ilmd: None,
    });
    Event {
        event_id: Some(event_id),
        biz_step: reader.biz_step.clone(),
        disposition: reader.disposition.clone(),
        read_point: Some(location(&reader.read_point)),
        biz_location: reader.biz_location.as_deref().map(location),
        ..Event::new(observed, time)
    }
}

/// An eventID that is the same for the same message bytes (a UUID-shaped SHA-256 prefix).
pub(crate) fn message_event_id(message: &[u8]) -> String {
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
