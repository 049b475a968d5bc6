//! The attributes a unit carries into a common-cause analysis, read from the projection:
//! everything upstream of it (lots and parts it was made from or belongs to, suppliers
//! they were received from) and every step of its own history (the station, the hour and
//! the shift, the production order it was made under, and its sensor readings beyond
//! bounds given with the request).
//!
//! Upstream attributes come from one breadth-first walk for all units at once: each node
//! remembers which units reach it, so a lot shared by a thousand units is read once, not
//! a thousand times.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Timelike, Utc};

use crate::{
    errors::GenealogyError,
    facts::LinkKind,
    graph::{self, Direction, NodeKind},
    store::tables::sensor_reading,
    store::{LinkEnd, ProjectionStore},
};

/// How deep upstream the walk goes.
const MAX_DEPTH: usize = 32;

/// What an attribute is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// An ancestor lot or class (the unit's own lot included).
    Lot,
    /// An ancestor instance: a part it was made from.
    Part,
    /// A party an ancestor was received from.
    Supplier,
    /// A read point the unit passed.
    Station,
    /// A read point in one hour (UTC).
    Hour,
    /// A read point in one shift of one day.
    Shift,
    /// A production order one of its events was made under.
    Order,
    /// A sensor reading of one of its events beyond its bounds, or one the sensor itself
    /// flagged.
    Sensor,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Self::Lot => "lot",
            Self::Part => "part",
            Self::Supplier => "supplier",
            Self::Station => "station",
            Self::Hour => "hour",
            Self::Shift => "shift",
            Self::Order => "order",
            Self::Sensor => "sensor",
        }
    }
}

/// One attribute value.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Attribute {
    pub kind: Kind,
    pub value: String,
}

/// A unit's attributes, each with the first time it has it.
pub type Attributes = HashMap<Attribute, DateTime<Utc>>;

/// When shifts begin: hours of the day (UTC), ascending.
#[derive(Debug, Clone)]
pub struct Shifts(Vec<u32>);

impl Shifts {
    /// Shifts starting at `hours`; none means 06:00, 14:00 and 22:00.
    pub fn starting_at(hours: &[u32]) -> Result<Self, String> {
        if let Some(bad) = hours.iter().find(|h| **h > 23) {
            return Err(format!("{bad} is not an hour of the day (0-23)"));
        }
        let mut hours: Vec<u32> = if hours.is_empty() {
            vec![6, 14, 22]
        } else {
            hours.to_vec()
        };
        hours.sort_unstable();
        hours.dedup();
        Ok(Self(hours))
    }

    /// The shift `time` falls in, named by the day and hour it began
    /// (`2026-12-01 22:00`): a night shift belongs to the day it started.
    pub fn of(&self, time: DateTime<Utc>) -> String {
        let hour = time.hour();
        match self.0.iter().rev().find(|start| **start <= hour) {
            Some(start) => format!("{} {start:02}:00", time.format("%Y-%m-%d")),
            None => {
                let last = self.0.last().copied().unwrap_or(0);
                let day_before = time - chrono::Duration::days(1);
                format!("{} {last:02}:00", day_before.format("%Y-%m-%d"))
            }
        }
    }
}

/// What the units' own histories say: each unit's station, hour and shift attributes, and
/// when it was first seen (`None` for a unit the projection has never seen). Read once,
/// for the period an analysis compares and for the attributes alike.
pub struct OwnSteps {
    pub attributes: Vec<Attributes>,
    pub first_seen: Vec<Option<DateTime<Utc>>>,
}

impl OwnSteps {
    /// Only the units the projection has seen, of `units` (whose steps these are).
    pub fn of_seen(self, units: Vec<String>) -> (Vec<String>, OwnSteps) {
        let mut seen = (
            Vec::new(),
            OwnSteps {
                attributes: Vec::new(),
                first_seen: Vec::new(),
            },
        );
        let steps = self.attributes.into_iter().zip(self.first_seen);
        for (unit, (attributes, first)) in units.into_iter().zip(steps) {
            if first.is_some() {
                seen.0.push(unit);
                seen.1.attributes.push(attributes);
                seen.1.first_seen.push(first);
            }
        }
        seen
    }
}

/// Bounds a sensor reading should stay within, given with a request.
#[derive(Debug, Clone, PartialEq)]
pub struct SensorBound {
    /// The report type it applies to, as written or as its last segment (`Temperature`
    /// applies to `gs1:Temperature` and `https://gs1.org/voc/Temperature`).
    pub kind: String,
    pub min: Option<f64>,
    pub max: Option<f64>,
    /// When given, readings in another unit of measure are not judged by it.
    pub uom: Option<String>,
}

impl SensorBound {
    fn applies_to(&self, reading: &sensor_reading::Model) -> bool {
        let kind = reading.kind.as_deref().unwrap_or_default();
        let last = kind.rsplit([':', '/']).next().unwrap_or(kind);
        let same_kind = self.kind == kind || self.kind == last;
        let same_unit = match (&self.uom, &reading.uom) {
            (Some(wanted), Some(read)) => wanted == read,
            _ => true,
        };
        same_kind && same_unit
    }
}

/// What is wrong with `reading`, if anything: the sensor's own exception, else the
/// highest or lowest value it reports beyond the first bound for its type, named
/// (`gs1:Temperature above 8 CEL`).
pub fn excursion(reading: &sensor_reading::Model, bounds: &[SensorBound]) -> Option<String> {
    let kind = reading.kind.as_deref().unwrap_or("sensor");
    if let Some(exception) = &reading.exception {
        return Some(format!("{kind} {exception}"));
    }
    let bound = bounds.iter().find(|bound| bound.applies_to(reading))?;
    let unit = bound
        .uom
        .as_ref()
        .or(reading.uom.as_ref())
        .map(|uom| format!(" {uom}"))
        .unwrap_or_default();
    let highest = [reading.value, reading.max_value].into_iter().flatten();
    let lowest = [reading.value, reading.min_value].into_iter().flatten();
    if let Some(max) = bound.max
        && highest.clone().any(|v| v > max)
    {
        return Some(format!("{kind} above {max}{unit}"));
    }
    if let Some(min) = bound.min
        && lowest.clone().any(|v| v < min)
    {
        return Some(format!("{kind} below {min}{unit}"));
    }
    None
}

/// How the units' own steps become attributes.
#[derive(Debug, Clone)]
pub struct StepRules {
    pub shifts: Shifts,
    pub sensor_bounds: Vec<SensorBound>,
}

/// The own steps of each of `units` (canonical node ids), in their order.
pub async fn own_steps(
    store: &ProjectionStore,
    units: &[String],
    rules: &StepRules,
) -> Result<OwnSteps, GenealogyError> {
    let mut own = OwnSteps {
        attributes: vec![Attributes::new(); units.len()],
        first_seen: vec![None; units.len()],
    };
    let index: HashMap<&str, usize> = units
        .iter()
        .enumerate()
        .map(|(i, unit)| (unit.as_str(), i))
        .collect();
    // (unit, sequence, time) of every step, for its sensor readings.
    let mut steps = Vec::new();
    for row in store.histories(units).await? {
        let Some(&unit) = index.get(row.identifier.as_str()) else {
            continue;
        };
        let time = row.event_time;
        let first = &mut own.first_seen[unit];
        *first = Some(first.map_or(time, |t| t.min(time)));
        steps.push((unit, row.sequence, time));
        let attributes = &mut own.attributes[unit];
        if let Some(order) = row.production_order {
            add(attributes, Kind::Order, order, time);
        }
        if let Some(station) = row.read_point {
            add_station(attributes, station, time, &rules.shifts);
        }
    }
    add_excursions(store, &steps, &rules.sensor_bounds, &mut own.attributes).await?;
    Ok(own)
}

/// The station, its hour and its shift of one step at `time`.
fn add_station(attributes: &mut Attributes, station: String, time: DateTime<Utc>, shifts: &Shifts) {
    add(
        attributes,
        Kind::Hour,
        format!("{station} {}", time.format("%Y-%m-%dT%H:00Z")),
        time,
    );
    add(
        attributes,
        Kind::Shift,
        format!("{station} {}", shifts.of(time)),
        time,
    );
    add(attributes, Kind::Station, station, time);
}

/// The sensor excursions of the `steps` (unit, sequence, time), read in one range.
async fn add_excursions(
    store: &ProjectionStore,
    steps: &[(usize, i64, DateTime<Utc>)],
    bounds: &[SensorBound],
    attributes: &mut [Attributes],
) -> Result<(), GenealogyError> {
    let sequences = steps.iter().map(|(_, sequence, _)| *sequence);
    let (Some(first), Some(last)) = (sequences.clone().min(), sequences.max()) else {
        return Ok(());
    };
    let mut excursions: HashMap<i64, Vec<String>> = HashMap::new();
    for reading in store.sensor_readings(first, last).await? {
        if let Some(excursion) = excursion(&reading, bounds) {
            excursions
                .entry(reading.sequence)
                .or_default()
                .push(excursion);
        }
    }
    for (unit, sequence, time) in steps {
        for excursion in excursions.get(sequence).into_iter().flatten() {
            add(
                &mut attributes[*unit],
                Kind::Sensor,
                excursion.clone(),
                *time,
            );
        }
    }
    Ok(())
}

fn add(attributes: &mut Attributes, kind: Kind, value: String, time: DateTime<Utc>) {
    attributes
        .entry(Attribute { kind, value })
        .and_modify(|first| *first = (*first).min(time))
        .or_insert(time);
}

/// Adds to each unit's attributes everything upstream of it, walked for all of the units
/// at once.
pub async fn add_upstream(
    store: &ProjectionStore,
    units: &[String],
    attributes: &mut [Attributes],
) -> Result<(), GenealogyError> {
    // Which units reach each node, and the units newly reaching the frontier's nodes.
    let mut reached: HashMap<String, BTreeSet<usize>> = HashMap::new();
    let mut frontier: HashMap<String, BTreeSet<usize>> = HashMap::new();
    for (i, unit) in units.iter().enumerate() {
        reached.entry(unit.clone()).or_default().insert(i);
        frontier.entry(unit.clone()).or_default().insert(i);
    }
    for _ in 0..MAX_DEPTH {
        if frontier.is_empty() {
            break;
        }
        let nodes: Vec<String> = frontier.keys().cloned().collect();
        let mut next: HashMap<String, BTreeSet<usize>> = HashMap::new();
        for step in graph::steps(Direction::Backward) {
            for link in store.links_at(&nodes, step.end, step.kinds, None).await? {
                let (near, far) = match step.end {
                    LinkEnd::From => (&link.from_node, &link.to_node),
                    LinkEnd::To => (&link.to_node, &link.from_node),
                };
                let Some(arriving) = frontier.get(near) else {
                    continue;
                };
                let kind = match graph::kind_of(far, Some(&link)) {
                    NodeKind::Party => Kind::Supplier,
                    NodeKind::Lot => Kind::Lot,
                    NodeKind::Instance => Kind::Part,
                };
                let ends_here = link.kind == LinkKind::ReceivedFrom.code();
                let known = reached.entry(far.clone()).or_default();
                for &unit in arriving {
                    add(&mut attributes[unit], kind, far.clone(), link.event_time);
                    if known.insert(unit) && !ends_here {
                        next.entry(far.clone()).or_default().insert(unit);
                    }
                }
            }
        }
        frontier = next;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().expect("a time")
    }

    #[test]
    fn a_night_shift_belongs_to_the_day_it_began() {
        let shifts = Shifts::starting_at(&[]).expect("default");
        assert_eq!(shifts.of(at("2026-12-01T07:30:00Z")), "2026-12-01 06:00");
        assert_eq!(shifts.of(at("2026-12-01T23:10:00Z")), "2026-12-01 22:00");
        assert_eq!(shifts.of(at("2026-12-02T03:00:00Z")), "2026-12-01 22:00");
    }

    fn reading(kind: &str, uom: &str, value: f64) -> sensor_reading::Model {
        sensor_reading::Model {
            sequence: 1,
            ordinal: 0,
            kind: Some(kind.to_owned()),
            uom: Some(uom.to_owned()),
            value: Some(value),
            min_value: None,
            max_value: None,
            exception: None,
        }
    }

    fn cold_chain() -> Vec<SensorBound> {
        vec![SensorBound {
            kind: "Temperature".to_owned(),
            min: Some(2.0),
            max: Some(8.0),
            uom: Some("CEL".to_owned()),
        }]
    }

    #[test]
    fn readings_beyond_their_bounds_are_excursions() {
        let bounds = cold_chain();
        let hot = reading("gs1:Temperature", "CEL", 9.5);
        assert_eq!(
            excursion(&hot, &bounds).as_deref(),
            Some("gs1:Temperature above 8 CEL")
        );
        let cold = reading("https://gs1.org/voc/Temperature", "CEL", 1.0);
        assert_eq!(
            excursion(&cold, &bounds).as_deref(),
            Some("https://gs1.org/voc/Temperature below 2 CEL")
        );
        assert_eq!(
            excursion(&reading("gs1:Temperature", "CEL", 8.0), &bounds),
            None
        );
    }

    #[test]
    fn a_reading_is_judged_only_by_bounds_of_its_type_and_unit() {
        let bounds = cold_chain();
        assert_eq!(
            excursion(&reading("gs1:Humidity", "P1", 90.0), &bounds),
            None
        );
        assert_eq!(
            excursion(&reading("gs1:Temperature", "FAH", 46.0), &bounds),
            None,
            "46 °F is not judged by a bound in °C"
        );
    }

    #[test]
    fn an_interval_report_is_judged_by_its_extremes_and_an_exception_by_itself() {
        let bounds = cold_chain();
        let interval = sensor_reading::Model {
            value: None,
            min_value: Some(3.0),
            max_value: Some(12.0),
            ..reading("gs1:Temperature", "CEL", 0.0)
        };
        assert_eq!(
            excursion(&interval, &bounds).as_deref(),
            Some("gs1:Temperature above 8 CEL")
        );
        let alarm = sensor_reading::Model {
            exception: Some("ALARM_CONDITION".to_owned()),
            ..reading("gs1:Temperature", "CEL", 5.0)
        };
        assert_eq!(
            excursion(&alarm, &[]).as_deref(),
            Some("gs1:Temperature ALARM_CONDITION")
        );
    }

    #[test]
    fn shift_starts_are_hours_of_the_day() {
        assert!(Shifts::starting_at(&[6, 24]).is_err());
        let two = Shifts::starting_at(&[18, 6]).expect("two shifts");
        assert_eq!(two.of(at("2026-12-01T12:00:00Z")), "2026-12-01 06:00");
    }
}
