//! The attributes a unit carries into a common-cause analysis, read from the projection:
//! everything upstream of it (lots and parts it was made from or belongs to, suppliers
//! they were received from) and every step of its own history (the station, the hour and
//! the shift, the production order it was made under, and its sensor readings beyond
//! bounds given with the request).
//!
//! They are counted as [`Key`]s, by interned ids, and named ([`name`]) only for what is
//! tested; what is upstream comes from [`super::upstream`].

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Timelike, Utc};

use crate::{
    errors::GenealogyError, facts, store::ProjectionStore, store::tables::sensor_reading,
    store::unit_profiles::Class, trends::hour_of,
};

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
        self.named(self.start_of(time))
    }

    /// When the shift `time` falls in began.
    pub fn start_of(&self, time: DateTime<Utc>) -> DateTime<Utc> {
        let day = time.date_naive();
        let (day, hour) = match self.0.iter().rev().find(|start| **start <= time.hour()) {
            Some(start) => (day, *start),
            None => (
                day.pred_opt().unwrap_or(day),
                self.0.last().copied().unwrap_or(0),
            ),
        };
        day.and_hms_opt(hour, 0, 0)
            .map_or(time, |start| start.and_utc())
    }

    /// A shift named by its start.
    fn named(&self, start: DateTime<Utc>) -> String {
        start.format("%Y-%m-%d %H:00").to_string()
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

/// An attribute value as the analysis counts it: by interned ids, named only for what is
/// answered ([`name`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Key {
    /// An ancestor node; `supplier` when it is the party an ancestor was received from.
    Upstream {
        node: i64,
        supplier: bool,
    },
    Station(i64),
    /// A station in the hour beginning at `start` (Unix seconds).
    Hour {
        station: i64,
        start: i64,
    },
    /// A station in the shift beginning at `start` (Unix seconds).
    Shift {
        station: i64,
        start: i64,
    },
    Order(i64),
    /// An excursion, numbered by [`Excursions`].
    Sensor(u32),
}

/// Which attributes a read answers.
#[derive(Debug, Clone, Copy)]
pub enum Wanted<'k> {
    /// Every ancestor, with the time of the link that reached it.
    All,
    /// Only these keys (upstream ones untimed, each at the Unix epoch): the good units of
    /// an analysis, of which only who holds what is kept.
    Only(&'k HashSet<Key>),
}

impl Wanted<'_> {
    pub fn keeps(&self, key: &Key) -> bool {
        match self {
            Self::All => true,
            Self::Only(keys) => keys.contains(key),
        }
    }
}

/// A unit's attribute values, each with a time it has it (repeats allowed: the earliest
/// counts).
pub type UnitKeys = Vec<(Key, DateTime<Utc>)>;

/// The excursions seen in one analysis, numbered for [`Key::Sensor`].
#[derive(Default)]
pub struct Excursions(Vec<String>, HashMap<String, u32>);

impl Excursions {
    fn number(&mut self, excursion: String) -> u32 {
        if let Some(number) = self.1.get(&excursion) {
            return *number;
        }
        let number = self.0.len() as u32;
        self.0.push(excursion.clone());
        self.1.insert(excursion, number);
        number
    }
}

/// What the units' own histories say: the keys of each unit's steps, and when it was
/// first seen (`None` for a unit the projection has never seen).
#[derive(Default)]
pub struct OwnSteps {
    pub keys: Vec<UnitKeys>,
    pub first_seen: Vec<Option<DateTime<Utc>>>,
}

impl OwnSteps {
    /// Adds a unit seen first at `first`.
    pub fn push(&mut self, keys: UnitKeys, first: DateTime<Utc>) {
        self.keys.push(keys);
        self.first_seen.push(Some(first));
    }
}

impl IntoIterator for OwnSteps {
    type Item = (UnitKeys, Option<DateTime<Utc>>);
    type IntoIter =
        std::iter::Zip<std::vec::IntoIter<UnitKeys>, std::vec::IntoIter<Option<DateTime<Utc>>>>;

    /// Each unit's keys and first time.
    fn into_iter(self) -> Self::IntoIter {
        self.keys.into_iter().zip(self.first_seen)
    }
}

/// The own steps of each of `units` (node ids), in their order, with the keys `wanted`.
pub async fn own_steps(
    store: &ProjectionStore,
    units: &[i64],
    rules: &StepRules,
    excursions: &mut Excursions,
    wanted: Wanted<'_>,
) -> Result<OwnSteps, GenealogyError> {
    let mut own = OwnSteps {
        keys: vec![UnitKeys::new(); units.len()],
        first_seen: vec![None; units.len()],
    };
    let index: HashMap<i64, usize> = units.iter().enumerate().map(|(i, u)| (*u, i)).collect();
    // (unit, sequence, time) of every step, for its sensor readings.
    let mut steps = Vec::new();
    for row in store.step_rows(units).await? {
        let Some(&unit) = index.get(&row.node) else {
            continue;
        };
        let time = row.event_time;
        let first = &mut own.first_seen[unit];
        *first = Some(first.map_or(time, |t| t.min(time)));
        steps.push((unit, row.sequence, time));
        let order = row.production_order.map(Key::Order);
        let station = row
            .read_point
            .into_iter()
            .flat_map(|station| station_keys(station, time, &rules.shifts));
        let keys = &mut own.keys[unit];
        keys.extend(
            order
                .into_iter()
                .chain(station)
                .filter(|key| wanted.keeps(key))
                .map(|k| (k, time)),
        );
    }
    let sensed = excursions_of(store, &steps, &rules.sensor_bounds, excursions).await?;
    for (unit, key, time) in sensed {
        if wanted.keeps(&key) {
            own.keys[unit].push((key, time));
        }
    }
    Ok(own)
}

/// The keys `wanted` each class of units holds (in their order): those of its own steps,
/// from its profile, and what is upstream of its parents. Untimed, as a baseline's keys
/// are.
pub async fn class_keys(
    store: &ProjectionStore,
    classes: &[Class],
    rules: &StepRules,
    excursions: &mut Excursions,
    wanted: Wanted<'_>,
) -> Result<Vec<UnitKeys>, GenealogyError> {
    let untimed = DateTime::UNIX_EPOCH;
    let mut keys: Vec<UnitKeys> = Vec::with_capacity(classes.len());
    let mut sensed = Vec::new();
    for (number, class) in classes.iter().enumerate() {
        let profile = &class.profile;
        let visits = profile.visits.iter().flat_map(|&(station, hour)| {
            let hour = DateTime::from_timestamp(hour, 0).unwrap_or_default();
            station_keys(station, hour, &rules.shifts)
        });
        let own = visits.chain(profile.orders.iter().map(|&order| Key::Order(order)));
        keys.push(
            own.filter(|key| wanted.keeps(key))
                .map(|key| (key, untimed))
                .collect(),
        );
        sensed.extend(
            profile
                .sensed
                .iter()
                .map(|&sequence| (number, sequence, untimed)),
        );
    }
    for (number, key, time) in
        excursions_of(store, &sensed, &rules.sensor_bounds, excursions).await?
    {
        if wanted.keeps(&key) {
            keys[number].push((key, time));
        }
    }
    add_upstream_of_parents(store, classes, wanted, &mut keys).await?;
    Ok(keys)
}

/// Adds to each class's keys its parents and what is upstream of them.
async fn add_upstream_of_parents(
    store: &ProjectionStore,
    classes: &[Class],
    wanted: Wanted<'_>,
    keys: &mut [UnitKeys],
) -> Result<(), GenealogyError> {
    let made_from = |class: &Class| {
        let parents = class.profile.parents.iter();
        parents
            .filter(|(_, supplier)| !supplier)
            .map(|(node, _)| *node)
            .collect::<Vec<_>>()
    };
    let mut parents: Vec<i64> = classes.iter().flat_map(made_from).collect();
    parents.sort_unstable();
    parents.dedup();
    let ancestors = super::upstream::upstream(store, &parents, wanted).await?;
    let number: HashMap<i64, usize> = parents.iter().enumerate().map(|(i, p)| (*p, i)).collect();
    for (class, keys) in classes.iter().zip(keys) {
        for &(node, supplier) in &class.profile.parents {
            let above = number.get(&node).map_or(&[][..], |&i| &ancestors[i][..]);
            let link = (node, supplier, DateTime::UNIX_EPOCH);
            super::upstream::inherit(keys, link, above, wanted);
        }
    }
    Ok(())
}

/// The station, its hour and its shift of one step at `time`.
fn station_keys(station: i64, time: DateTime<Utc>, shifts: &Shifts) -> [Key; 3] {
    [
        Key::Station(station),
        Key::Hour {
            station,
            start: hour_of(time).timestamp(),
        },
        Key::Shift {
            station,
            start: shifts.start_of(time).timestamp(),
        },
    ]
}

/// The sensor excursions of the `steps` (unit, sequence, time), as (unit, key, time).
async fn excursions_of(
    store: &ProjectionStore,
    steps: &[(usize, i64, DateTime<Utc>)],
    bounds: &[SensorBound],
    numbered: &mut Excursions,
) -> Result<Vec<(usize, Key, DateTime<Utc>)>, GenealogyError> {
    let mut sequences: Vec<i64> = steps.iter().map(|(_, sequence, _)| *sequence).collect();
    sequences.sort_unstable();
    sequences.dedup();
    let mut by_sequence: HashMap<i64, Vec<Key>> = HashMap::new();
    for reading in store.sensor_readings_of(&sequences).await? {
        if let Some(excursion) = excursion(&reading, bounds) {
            let key = Key::Sensor(numbered.number(excursion));
            by_sequence.entry(reading.sequence).or_default().push(key);
        }
    }
    let mut found = Vec::new();
    for (unit, sequence, time) in steps {
        for key in by_sequence.get(sequence).into_iter().flatten() {
            found.push((*unit, *key, *time));
        }
    }
    Ok(found)
}

/// The attributes `keys` stand for.
pub async fn name(
    store: &ProjectionStore,
    keys: &[Key],
    shifts: &Shifts,
    excursions: &Excursions,
) -> Result<HashMap<Key, Attribute>, GenealogyError> {
    let ids = keys.iter().filter_map(|key| match *key {
        Key::Upstream { node, .. } | Key::Order(node) => Some(node),
        Key::Station(station) | Key::Hour { station, .. } | Key::Shift { station, .. } => {
            Some(station)
        }
        Key::Sensor(_) => None,
    });
    let names = store.names_of(ids).await?;
    let name = |id: i64| names.get(&id).map(|n| n.to_string()).unwrap_or_default();
    let at = |seconds: i64| DateTime::<Utc>::from_timestamp(seconds, 0).unwrap_or_default();
    let attribute = |key: &Key| {
        let (kind, value) = match *key {
            Key::Upstream { node, supplier } => {
                let uri = name(node);
                let kind = if supplier {
                    Kind::Supplier
                } else if facts::is_lot(&uri) {
                    Kind::Lot
                } else {
                    Kind::Part
                };
                (kind, uri)
            }
            Key::Station(station) => (Kind::Station, name(station)),
            Key::Hour { station, start } => (
                Kind::Hour,
                format!("{} {}", name(station), at(start).format("%Y-%m-%dT%H:00Z")),
            ),
            Key::Shift { station, start } => (
                Kind::Shift,
                format!("{} {}", name(station), shifts.named(at(start))),
            ),
            Key::Order(order) => (Kind::Order, name(order)),
            Key::Sensor(number) => (Kind::Sensor, excursions.0[number as usize].clone()),
        };
        Attribute { kind, value }
    };
    Ok(keys.iter().map(|key| (*key, attribute(key))).collect())
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
