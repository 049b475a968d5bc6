//! One fixed reader as the `[rfid.readers.<name>]` table configures it: who it is (the
//! topic it publishes on, its roles and plant, as for scan readers), where each antenna
//! reads (read point, business location, bizStep, disposition), and how its reads are
//! smoothed.
//!
//! ```toml
//! [rfid.readers.dock-door-1]
//! topic = "plant-1/rfid/dock-door-1"
//! read_point = "urn:epc:id:sgln:4012345.00001.0"   # every antenna, unless it says otherwise
//! biz_step = "receiving"
//! hold_ms = 1000          # reads of a tag closer together than this are one observation
//! leave_after_ms = 5000   # optional: an event when a tag has not been read for this long
//! min_rssi_dbm = -70      # optional: weaker reads are ignored
//! portal = { pass_gap_ms = 2000 }   # optional: one event per pass of all tags read
//! [rfid.readers.dock-door-1.antennas.3]
//! read_point = "urn:epc:id:sgln:4012345.00002.0"
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;
use std::time::Duration;

/// Where reads happen and what they mean: one per read point of a reader.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Zone {
    pub read_point: String,
    pub biz_location: Option<String>,
    pub biz_step: Option<String>,
    pub disposition: Option<String>,
}

/// A reader's portal settings: tags read in one pass become one event.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Portal {
    /// A pass ends when no tag has been read for this long.
    pub pass_gap_ms: u64,
    /// And at the latest this long after it began (a pallet parked in the door).
    #[serde(default = "default_max_pass_ms")]
    pub max_pass_ms: u64,
}

fn default_max_pass_ms() -> u64 {
    60_000
}

/// `[rfid.readers.<name>]` as written.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct Written {
    topic: Option<String>,
    #[serde(default = "default_roles")]
    roles: Vec<String>,
    plant: Option<String>,
    read_point: String,
    biz_location: Option<String>,
    biz_step: Option<String>,
    disposition: Option<String>,
    #[serde(default = "default_hold_ms")]
    hold_ms: u64,
    leave_after_ms: Option<u64>,
    #[serde(default = "default_leave_biz_step")]
    leave_biz_step: String,
    min_rssi_dbm: Option<f64>,
    portal: Option<Portal>,
    #[serde(default)]
    antennas: BTreeMap<String, Zone>,
}

fn default_roles() -> Vec<String> {
    vec!["operator".to_owned()]
}

fn default_hold_ms() -> u64 {
    1_000
}

fn default_leave_biz_step() -> String {
    "departing".to_owned()
}

/// A configured reader.
#[derive(Debug, Clone, PartialEq)]
pub struct Reader {
    pub name: String,
    /// The exact topic it publishes on (readers are known by their topic); a reader
    /// without one posts its reads to `POST /rfid/<name>`.
    pub topic: Option<String>,
    pub roles: Vec<String>,
    pub plant: Option<String>,
    /// Where antennas without their own zone read.
    pub zone: Zone,
    /// Zones of antennas by port number.
    pub antennas: BTreeMap<u32, Zone>,
    /// Reads closer together than this are one observation.
    pub hold: Duration,
    /// An event when a present tag has not been read for this long, with this bizStep.
    pub leave_after: Option<Duration>,
    pub leave_biz_step: String,
    /// Reads weaker than this (dBm) are ignored.
    pub min_rssi_dbm: Option<f64>,
    pub portal: Option<Portal>,
}

impl Reader {
    /// Reads `[rfid.readers.<name>]`; a mistake is refused naming its field.
    pub fn from_table(name: &str, table: &toml::Table) -> Result<Self, String> {
        let field = |path: &str| format!("rfid.readers.{name}.{path}");
        let written: Written = serde_path_to_error::deserialize(toml::Value::Table(table.clone()))
            .map_err(|err| format!("{}: {}", field(&err.path().to_string()), err.inner()))?;
        let mut antennas = BTreeMap::new();
        for (port, zone) in written.antennas {
            let number = port.parse::<u32>().map_err(|_| {
                format!(
                    "{}: an antenna port number",
                    field(&format!("antennas.{port}"))
                )
            })?;
            antennas.insert(number, zone);
        }
        if let Some(role) = written
            .roles
            .iter()
            .find(|r| tracery_runtime::auth::Role::parse(r).is_none())
        {
            return Err(format!("{}: `{role}` is not a role", field("roles")));
        }
        let leave_after = written.leave_after_ms.map(Duration::from_millis);
        if leave_after.is_some_and(|leave| leave.as_millis() < u128::from(written.hold_ms)) {
            return Err(format!(
                "{}: shorter than hold_ms ({}): a tag would leave between two reads",
                field("leave_after_ms"),
                written.hold_ms
            ));
        }
        if written.portal.as_ref().is_some_and(|p| p.pass_gap_ms == 0) {
            return Err(format!("{}: at least 1", field("portal.pass_gap_ms")));
        }
        Ok(Self {
            name: name.to_owned(),
            topic: written.topic,
            roles: written.roles,
            plant: written.plant,
            zone: Zone {
                read_point: written.read_point,
                biz_location: written.biz_location,
                biz_step: written.biz_step,
                disposition: written.disposition,
            },
            antennas,
            hold: Duration::from_millis(written.hold_ms.max(1)),
            leave_after,
            leave_biz_step: written.leave_biz_step,
            min_rssi_dbm: written.min_rssi_dbm,
            portal: written.portal,
        })
    }

    /// Where `antenna` reads.
    pub fn zone(&self, antenna: Option<u32>) -> &Zone {
        antenna
            .and_then(|port| self.antennas.get(&port))
            .unwrap_or(&self.zone)
    }

    /// How long a tag stays present without reads.
    pub fn presence(&self) -> Duration {
        self.leave_after.unwrap_or(self.hold)
    }
}

/// Every reader of `tables`; two readers on one topic are refused.
pub fn readers(tables: &BTreeMap<String, toml::Table>) -> Result<Vec<Reader>, String> {
    let readers = tables
        .iter()
        .map(|(name, table)| Reader::from_table(name, table))
        .collect::<Result<Vec<_>, _>>()?;
    for (index, reader) in readers.iter().enumerate() {
        let Some(topic) = &reader.topic else {
            continue;
        };
        if let Some(other) = readers[..index]
            .iter()
            .find(|r| r.topic.as_ref() == Some(topic))
        {
            return Err(format!(
                "rfid.readers.{}.topic: `{topic}` is reader `{}`'s topic too",
                reader.name, other.name
            ));
        }
    }
    Ok(readers)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Reader, String> {
        Reader::from_table("door", &toml::from_str(text).expect("toml"))
    }

    #[test]
    fn antennas_read_at_their_own_zone_or_the_readers() {
        let reader = parse(
            "topic = \"p/rfid/door\"\nread_point = \"urn:epc:id:sgln:4012345.00001.0\"\n\
             [antennas.3]\nread_point = \"urn:epc:id:sgln:4012345.00002.0\"\nbiz_step = \"shipping\"",
        )
        .expect("valid");
        assert_eq!(
            reader.zone(Some(3)).read_point,
            "urn:epc:id:sgln:4012345.00002.0"
        );
        assert_eq!(
            reader.zone(Some(1)).read_point,
            "urn:epc:id:sgln:4012345.00001.0"
        );
        assert_eq!(
            reader.zone(None).read_point,
            "urn:epc:id:sgln:4012345.00001.0"
        );
        assert_eq!(reader.hold, Duration::from_secs(1));
    }

    #[test]
    fn mistakes_are_refused_by_field() {
        let error = |text: &str| parse(text).expect_err(text);
        assert!(
            error("topic = \"t\"").contains("read_point"),
            "no read point"
        );
        let typo = error("topic = \"t\"\nread_point = \"x\"\nhold_sm = 5");
        assert!(typo.contains("hold_sm"), "{typo}");
        let leave = error("topic = \"t\"\nread_point = \"x\"\nhold_ms = 500\nleave_after_ms = 100");
        assert!(
            leave.starts_with("rfid.readers.door.leave_after_ms"),
            "{leave}"
        );
        let port = error("topic = \"t\"\nread_point = \"x\"\n[antennas.left]\nread_point = \"y\"");
        assert!(port.contains("antennas.left"), "{port}");
    }
}
