//! Tag reads out of what fixed readers publish (`../shared/rfid/READERS.md`):
//!
//! - Zebra IoT Connector: `{"type", "timestamp", "data": {"idHex", "antenna", "peakRssi"
//!   (dBm), "format": "epc", ...}}`, one object or an array of them;
//! - Impinj IoT device interface: `{"timestamp", "eventType": "tagInventory",
//!   "tagInventoryEvent": {"epcHex" or base64 "epc", "antennaPort", "peakRssiCdbm" (centi-dBm),
//!   "lastSeenTime"}}`, one event or an array (webhook batches). Other event types carry no
//!   reads; an `overflow` (the reader's buffer dropped reads) is counted, for an alert.
//!
//! A refusal names the field (`[2].tagInventoryEvent.epcHex`).

use base64::Engine as _;
use chrono::{DateTime, FixedOffset};
use serde_json::Value;
use tracery_runtime::error::Violation;

/// One read of one tag.
#[derive(Debug, Clone, PartialEq)]
pub struct TagRead {
    /// The EPC bank in upper-case hex, as reported (not yet decoded).
    pub hex: String,
    pub antenna: Option<u32>,
    pub rssi_dbm: Option<f64>,
    /// When the reader saw it, if it says.
    pub time: Option<DateTime<FixedOffset>>,
    /// Where in the message the EPC was, for refusals.
    pub field: String,
}

fn malformed(field: &str, why: impl Into<String>) -> Violation {
    Violation::new(field, why).with_reason("MALFORMED_MESSAGE")
}

/// What a reader's message says.
#[derive(Debug, Default)]
pub struct ReaderMessage {
    pub reads: Vec<TagRead>,
    /// Overflow events: the reader's buffer dropped reads.
    pub overflows: u32,
}

/// One event of a message.
enum Item {
    Read(TagRead),
    Overflow,
    /// An event without reads (a TID read, a status event).
    Nothing,
}

/// Every tag read in a reader's message.
pub fn tag_reads(message: &Value) -> Result<ReaderMessage, Violation> {
    let items = match message {
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(index, item)| one_event(item, &format!("[{index}].")))
            .collect::<Result<Vec<_>, _>>()?,
        item => vec![one_event(item, "")?],
    };
    let mut message = ReaderMessage::default();
    for item in items {
        match item {
            Item::Read(read) => message.reads.push(read),
            Item::Overflow => message.overflows += 1,
            Item::Nothing => {}
        }
    }
    Ok(message)
}

fn one_event(event: &Value, path: &str) -> Result<Item, Violation> {
    if let Some(data) = event.get("data") {
        return zebra(event, data, path).map(|read| read.map_or(Item::Nothing, Item::Read));
    }
    if let Some(kind) = event.get("eventType").and_then(Value::as_str) {
        if kind == "overflow" {
            return Ok(Item::Overflow);
        }
        return impinj(event, kind, path).map(|read| read.map_or(Item::Nothing, Item::Read));
    }
    Err(malformed(
        path.trim_end_matches('.'),
        "neither a Zebra IoT Connector data event (`data.idHex`) nor an Impinj IoT event (`eventType`)",
    ))
}

fn zebra(event: &Value, data: &Value, path: &str) -> Result<Option<TagRead>, Violation> {
    let field = |name: &str| format!("{path}data.{name}");
    match data.get("format").and_then(Value::as_str) {
        None | Some("epc") => {}
        // A TID or another bank is not an EPC: nothing to observe.
        Some(_) => return Ok(None),
    }
    let hex = text(data, "idHex", &field("idHex"))?;
    Ok(Some(TagRead {
        hex: hex.to_ascii_uppercase(),
        antenna: port(data.get("antenna"), &field("antenna"))?,
        rssi_dbm: data.get("peakRssi").and_then(Value::as_f64),
        time: time(event.get("timestamp"), &format!("{path}timestamp"))?,
        field: field("idHex"),
    }))
}

fn impinj(event: &Value, kind: &str, path: &str) -> Result<Option<TagRead>, Violation> {
    if kind != "tagInventory" {
        return Ok(None);
    }
    let inventory_path = format!("{path}tagInventoryEvent");
    let inventory = event
        .get("tagInventoryEvent")
        .ok_or_else(|| malformed(&inventory_path, "required with eventType tagInventory"))?;
    let field = |name: &str| format!("{inventory_path}.{name}");
    let (hex, hex_field) = match inventory.get("epcHex") {
        Some(_) => (
            text(inventory, "epcHex", &field("epcHex"))?.to_ascii_uppercase(),
            field("epcHex"),
        ),
        None => (base64_hex(inventory, &field("epc"))?, field("epc")),
    };
    let seen = inventory
        .get("lastSeenTime")
        .or_else(|| event.get("timestamp"));
    Ok(Some(TagRead {
        hex,
        antenna: port(inventory.get("antennaPort"), &field("antennaPort"))?,
        rssi_dbm: inventory
            .get("peakRssiCdbm")
            .and_then(Value::as_f64)
            .map(|centi| centi / 100.0),
        time: time(seen, &field("lastSeenTime"))?,
        field: hex_field,
    }))
}

fn text<'a>(object: &'a Value, key: &str, field: &str) -> Result<&'a str, Violation> {
    match object.get(key).and_then(Value::as_str).map(str::trim) {
        Some(text) if !text.is_empty() => Ok(text),
        _ => Err(malformed(field, "required: a non-empty string")),
    }
}

/// Impinj's base64 `epc` as upper-case hex.
fn base64_hex(inventory: &Value, field: &str) -> Result<String, Violation> {
    let written = text(inventory, "epc", field)?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(written)
        .map_err(|err| malformed(field, format!("not base64: {err}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02X}")).collect())
}

fn port(value: Option<&Value>, field: &str) -> Result<Option<u32>, Violation> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(value) => value
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| malformed(field, "an antenna port number")),
    }
}

/// RFC 3339, or Zebra's `2025-03-14T09:26:53.589+0000` (an offset without a colon).
fn time(value: Option<&Value>, field: &str) -> Result<Option<DateTime<FixedOffset>>, Violation> {
    let Some(written) = value.and_then(Value::as_str) else {
        return Ok(None);
    };
    // Zebra's offset as RFC 3339 writes it (`+0000` → `+00:00`), so one parser reads both.
    let colon_less = written.len() > 5
        && matches!(written.as_bytes()[written.len() - 5], b'+' | b'-')
        && written.is_char_boundary(written.len() - 2)
        && !written[written.len() - 5..].contains(':');
    let rfc3339 = if colon_less {
        let (hours, minutes) = written.split_at(written.len() - 2);
        std::borrow::Cow::Owned(format!("{hours}:{minutes}"))
    } else {
        std::borrow::Cow::Borrowed(written)
    };
    DateTime::parse_from_rfc3339(&rfc3339)
        .map(Some)
        .map_err(|_| {
            malformed(
                field,
                format!("`{written}` is not a date-time with an offset"),
            )
        })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn zebra_and_impinj_reads_come_out_alike() {
        let zebra = json!({"type":"INVENTORY","timestamp":"2025-03-14T09:26:54.001+0000",
            "data":{"MAC":"C4:7D:CC:FF:FF:FF","antenna":2,"eventNum":2,"format":"epc",
                    "idHex":"3074257bf7194e4000001a85","peakRssi":-52,"reads":17}});
        let impinj = json!([{"timestamp":"2025-03-14T09:26:54.120Z","hostname":"impinj-12-34-56",
            "eventType":"tagInventory","tagInventoryEvent":{"epc":"MHQle/cZTkAAABqF",
            "pc":"MAA=","antennaPort":2,"peakRssiCdbm":-5234,"lastSeenTime":"2025-03-14T09:26:54.101Z"}},
            {"timestamp":"2025-03-14T09:26:54.120Z","eventType":"antennaConnected","antennaConnectedEvent":{}}]);
        let zebra = tag_reads(&zebra).expect("zebra").reads;
        let impinj = tag_reads(&impinj).expect("impinj").reads;
        assert_eq!(zebra.len(), 1);
        assert_eq!(impinj.len(), 1, "one tag read and one event without reads");
        for read in [&zebra[0], &impinj[0]] {
            assert_eq!(read.hex, "3074257BF7194E4000001A85");
            assert_eq!(read.antenna, Some(2));
            assert!(read.time.is_some());
        }
        assert_eq!(zebra[0].rssi_dbm, Some(-52.0));
        assert_eq!(impinj[0].rssi_dbm, Some(-52.34));
        assert_eq!(impinj[0].field, "[0].tagInventoryEvent.epc");
    }

    #[test]
    fn an_overflow_is_counted_beside_the_reads() {
        let message = tag_reads(&json!([
            {"timestamp":"2025-03-14T09:26:54.120Z","eventType":"overflow",
             "overflowEvent":{"eventsPurged":120}},
            {"timestamp":"2025-03-14T09:26:54.120Z","eventType":"tagInventory",
             "tagInventoryEvent":{"epcHex":"3074257BF7194E4000001A85","antennaPort":1}}
        ]))
        .expect("read");
        assert_eq!((message.reads.len(), message.overflows), (1, 1));
    }

    #[test]
    fn refusals_name_the_field() {
        let missing = tag_reads(&json!({"data": {"antenna": 1}})).expect_err("no idHex");
        assert_eq!(missing.field, "data.idHex");
        let bad =
            tag_reads(&json!([{"eventType":"tagInventory","tagInventoryEvent":{"epc":"!!"}}]))
                .expect_err("not base64");
        assert_eq!(bad.field, "[0].tagInventoryEvent.epc");
        let other = tag_reads(&json!({"hello": 1})).expect_err("unknown shape");
        assert!(other.description.contains("Zebra"), "{other:?}");
    }
}
