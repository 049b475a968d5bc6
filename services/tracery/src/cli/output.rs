//! Tables, times and identifiers as the CLI shows them.

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use tracery_runtime::error::ErrorKind;

use tracery_proto::v1 as pb;

use super::Failure;
pub use crate::views::{edge_kind, node_kind, time};

/// A table with `header` (none when empty); rows are added by the caller.
pub fn table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    if !header.is_empty() {
        table.set_header(header);
    }
    table
}

/// An RFC 3339 time given on the command line.
pub fn parse_time(flag: &str, text: &str) -> Result<prost_types::Timestamp, Failure> {
    let time = chrono::DateTime::parse_from_rfc3339(text).map_err(|err| {
        Failure::new(
            ErrorKind::InvalidArgument,
            format!("{flag} {text}: not an RFC 3339 time (like 2026-11-26T10:00:00Z): {err}"),
        )
    })?;
    Ok(prost_types::Timestamp {
        seconds: time.timestamp(),
        nanos: i32::try_from(time.timestamp_subsec_nanos()).unwrap_or(0),
    })
}

/// The failed units of an analysis as a selection (`tracery analyze --disposition …`, the
/// dashboard's analysis form): `None` when it names no disposition and no bizStep. `period`
/// is its start and end (RFC 3339), each with the name errors give it (`--from`, `from`).
pub fn failed_selection(
    dispositions: Vec<String>,
    biz_steps: Vec<String>,
    period: [(&str, Option<&str>); 2],
    product: Option<String>,
) -> Result<Option<pb::FailedSelection>, Failure> {
    if dispositions.is_empty() && biz_steps.is_empty() {
        return Ok(None);
    }
    let [from, until] = period.map(|(name, text)| text.map(|t| parse_time(name, t)).transpose());
    Ok(Some(pb::FailedSelection {
        from: from?,
        until: until?,
        product: product.unwrap_or_default(),
        dispositions,
        biz_steps,
    }))
}

/// Sensor bounds as typed (`tracery analyze --sensor-bound`, the dashboard's analysis
/// form), each `TYPE=MIN..MAX` with either end left out and an optional `,UOM`:
/// `Temperature=2..8,CEL`, `gs1:RelativeHumidity=..60`. `name` is how errors call them.
pub fn sensor_bounds(name: &str, written: &[String]) -> Result<Vec<pb::SensorBound>, Failure> {
    written
        .iter()
        .map(|text| sensor_bound(text.trim()))
        .enumerate()
        .map(|(i, bound)| {
            bound.map_err(|reason| {
                Failure::new(
                    ErrorKind::InvalidArgument,
                    format!(
                        "{name}[{i}] `{}`: {reason} (like Temperature=2..8,CEL)",
                        written[i]
                    ),
                )
            })
        })
        .collect()
}

fn sensor_bound(text: &str) -> Result<pb::SensorBound, String> {
    let (kind, rest) = text.rsplit_once('=').ok_or("no `=` after the type")?;
    let (range, uom) = rest.split_once(',').unwrap_or((rest, ""));
    let (min, max) = range
        .split_once("..")
        .ok_or("no `..` between min and max")?;
    let number = |end: &str| -> Result<Option<f64>, String> {
        let end = end.trim();
        (!end.is_empty())
            .then(|| {
                end.parse::<f64>()
                    .map_err(|_| format!("`{end}` is not a number"))
            })
            .transpose()
    };
    Ok(pb::SensorBound {
        r#type: kind.trim().to_owned(),
        min: number(min)?,
        max: number(max)?,
        uom: uom.trim().to_owned(),
    })
}

/// An identifier as typed or scanned: GS1 forms (EPC URN or tag URI, Digital Link, element
/// string with or without a symbology identifier, an RFID tag's EPC hex) are checked here, so a typo is reported with
/// its position instead of an empty answer, and become the canonical Digital Link; other
/// identifiers (party ids, `urn:uuid:`) are passed on as written.
pub fn identifier(text: &str) -> Result<String, Failure> {
    let text = text.trim();
    let looks_gs1 = text.starts_with("urn:epc:")
        || text.starts_with("https://id.gs1.org/")
        || text.starts_with('(')
        || text.starts_with(']')
        || (text.len() > 2 && text.chars().all(|c| c.is_ascii_digit()))
        || tracery_gs1::tds::looks_like_hex(text);
    if !looks_gs1 {
        return Ok(text.to_owned());
    }
    let parsed = tracery_gs1::parse_any(text).map_err(|err| {
        Failure::new(
            ErrorKind::InvalidArgument,
            format!("`{text}` is malformed: {err}"),
        )
    })?;
    match parsed.identifier.map(|id| id.canonical_link()) {
        Some(Ok(link)) => Ok(link),
        _ if text.starts_with("urn:epc:") || text.starts_with("https://") => Ok(text.to_owned()),
        _ => Err(Failure::new(
            ErrorKind::InvalidArgument,
            format!("`{text}` holds no GS1 key to trace"),
        )),
    }
}

/// A corrected event as an operator gives it: an EPCIS JSON-LD event, or a document
/// holding just that event (the CLI's file, the dashboard's editor).
pub fn corrected_event(mut value: serde_json::Value) -> Result<pb::EpcisEvent, String> {
    if value["type"] == "EPCISDocument" {
        value = match value["epcisBody"]["eventList"]
            .as_array()
            .map(Vec::as_slice)
        {
            Some([event]) => event.clone(),
            _ => return Err("the document must hold exactly one event".into()),
        };
    }
    let event = tracery_epcis::json::parse_event(value)
        .map_err(|err| format!("not an EPCIS event: {err}"))?;
    Ok(tracery_epcis::proto::event_to_proto(&event))
}

/// Prints `value` as pretty JSON.
pub fn print_json(value: &serde_json::Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sensor_bound_is_a_type_a_range_and_perhaps_a_unit() {
        let written = [
            "Temperature=2..8,CEL",
            "gs1:Humidity=..60",
            "Pressure=-1.5..",
        ];
        let bounds = sensor_bounds("bounds", &written.map(str::to_owned)).expect("bounds");
        let read: Vec<(&str, Option<f64>, Option<f64>, &str)> = bounds
            .iter()
            .map(|b| (b.r#type.as_str(), b.min, b.max, b.uom.as_str()))
            .collect();
        assert_eq!(
            read,
            vec![
                ("Temperature", Some(2.0), Some(8.0), "CEL"),
                ("gs1:Humidity", None, Some(60.0), ""),
                ("Pressure", Some(-1.5), None, ""),
            ]
        );
    }

    #[test]
    fn a_malformed_sensor_bound_is_named_by_its_position() {
        for (text, reason) in [
            ("Temperature", "no `=`"),
            ("Temperature=2-8", "no `..`"),
            ("Temperature=two..8", "`two` is not a number"),
        ] {
            let written = ["T=1..2".to_owned(), text.to_owned()];
            let failure = sensor_bounds("--sensor-bound", &written).expect_err(text);
            assert!(
                failure
                    .message
                    .starts_with(&format!("--sensor-bound[1] `{text}`: {reason}")),
                "{}",
                failure.message
            );
        }
    }
}
