//! The attributes a unit carries into a common-cause analysis, read from the projection:
//! everything upstream of it (lots and parts it was made from or belongs to, suppliers
//! they were received from) and every step of its own history (the station, the hour and
//! the shift).
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

/// The own steps of each of `units` (canonical node ids), in their order.
pub async fn own_steps(
    store: &ProjectionStore,
    units: &[String],
    shifts: &Shifts,
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
    for row in store.histories(units).await? {
        let Some(&unit) = index.get(row.identifier.as_str()) else {
            continue;
        };
        let time = row.event_time;
        let first = &mut own.first_seen[unit];
        *first = Some(first.map_or(time, |t| t.min(time)));
        let Some(station) = row.read_point else {
            continue;
        };
        let attributes = &mut own.attributes[unit];
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
    Ok(own)
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

    #[test]
    fn shift_starts_are_hours_of_the_day() {
        assert!(Shifts::starting_at(&[6, 24]).is_err());
        let two = Shifts::starting_at(&[18, 6]).expect("two shifts");
        assert_eq!(two.of(at("2026-12-01T12:00:00Z")), "2026-12-01 06:00");
    }
}
