//! The plant's trends, kept by the projection as it applies events: per hour and station,
//! the events, the first inspections and how many of those passed; per hour and stage, how
//! long identifiers stayed there (a histogram of dwell times). A week of a busy plant is a
//! few thousand rows, so the dashboard's trend charts read them at once.
//!
//! - The hour is the event time's, in UTC; a station and a stage are both the event's
//!   read point (0 when it names none).
//! - A first inspection is an identifier's first event with bizStep `inspecting`; it passed
//!   unless its disposition fails it ([`tracery_epcis::Event::inspection_passed`]).
//! - Dwell is measured on each identifier's own events: from its first event at a station to
//!   its first event elsewhere, or to the event that takes it off the floor (consumed,
//!   retired, shipped). What rides in a container is measured by the container.
//! - Counts are added once, in the transaction that moves the projection's cursor. An
//!   error declaration does not take back what the declared event added to its hour.
//!
//! This module is the arithmetic, with no I/O; the store reads the positions it needs and
//! writes what it returns.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};
pub use tracery_runtime::proto_fields::hour_of;

/// The station of an event with no read point.
pub const NO_STATION: i64 = 0;

/// Upper bounds (seconds, exclusive) of the dwell buckets; a last bucket holds the rest:
/// under 1 min, 5 min, 15 min, 1 h, 4 h, 1 day, and longer.
pub const DWELL_BOUNDS: [i64; 6] = [60, 300, 900, 3_600, 14_400, 86_400];

/// Where an identifier is on the floor, and whether it has been inspected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// [`NO_STATION`] once it has left the floor.
    pub station: i64,
    pub since: DateTime<Utc>,
    pub inspected: bool,
}

/// What one event adds to the trends.
#[derive(Debug, Clone)]
pub struct Step {
    pub time: DateTime<Utc>,
    pub station: i64,
    /// For an inspection: whether it passed.
    pub inspection_passed: Option<bool>,
    /// Instances it names that stay on the floor (node ids).
    pub arriving: Vec<i64>,
    /// Instances it takes off the floor.
    pub leaving: Vec<i64>,
}

/// One station's hour.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HourCounts {
    pub events: i64,
    pub inspected: i64,
    pub passed_first_time: i64,
}

/// One dwell bucket of one stage's hour.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DwellCounts {
    pub visits: i64,
    pub total_seconds: i64,
}

/// What a run of events adds: counts to add to the stored ones, and the positions that
/// changed.
#[derive(Debug, Default)]
pub struct Rollup {
    /// By (hour, station).
    pub hours: BTreeMap<(DateTime<Utc>, i64), HourCounts>,
    /// By (hour, stage, bucket index).
    pub dwell: BTreeMap<(DateTime<Utc>, i64, i16), DwellCounts>,
    /// Every position read or changed, by node.
    pub positions: HashMap<i64, Position>,
    changed: BTreeSet<i64>,
}

/// The index of the bucket `seconds` of dwell fall in.
pub fn bucket_of(seconds: i64) -> i16 {
    let index = DWELL_BOUNDS
        .iter()
        .take_while(|bound| seconds >= **bound)
        .count();
    i16::try_from(index).unwrap_or(i16::MAX)
}

impl Rollup {
    /// A rollup starting from the stored `positions` of the identifiers a run names.
    pub fn from_positions(positions: HashMap<i64, Position>) -> Self {
        Self {
            positions,
            ..Self::default()
        }
    }

    /// Adds one event, in sequence order.
    pub fn apply(&mut self, step: &Step) {
        let hour = hour_of(step.time);
        let counts = self.hours.entry((hour, step.station)).or_default();
        counts.events += 1;
        if let Some(passed) = step.inspection_passed {
            for node in step.arriving.iter().chain(&step.leaving) {
                let position = self.positions.get(node);
                if position.is_some_and(|p| p.inspected) {
                    continue;
                }
                let counts = self.hours.entry((hour, step.station)).or_default();
                counts.inspected += 1;
                counts.passed_first_time += i64::from(passed);
                let unplaced = Position {
                    station: NO_STATION,
                    since: step.time,
                    inspected: false,
                };
                let position = position.copied().unwrap_or(unplaced);
                self.set(
                    *node,
                    Position {
                        inspected: true,
                        ..position
                    },
                );
            }
        }
        for node in &step.arriving {
            self.arrive(*node, step.station, step.time);
        }
        for node in &step.leaving {
            self.leave(*node, step.time);
        }
    }

    /// The positions to write back.
    pub fn changed_positions(&self) -> impl Iterator<Item = (i64, Position)> + '_ {
        self.changed
            .iter()
            .filter_map(|node| Some((*node, *self.positions.get(node)?)))
    }

    fn set(&mut self, node: i64, position: Position) {
        if self.positions.insert(node, position) != Some(position) {
            self.changed.insert(node);
        }
    }

    fn arrive(&mut self, node: i64, station: i64, time: DateTime<Utc>) {
        let inspected = match self.positions.get(&node).copied() {
            Some(here) if here.station == station && station != NO_STATION => return,
            Some(there) => {
                self.record_dwell(there, time);
                there.inspected
            }
            None => false,
        };
        self.set(
            node,
            Position {
                station,
                since: time,
                inspected,
            },
        );
    }

    fn leave(&mut self, node: i64, time: DateTime<Utc>) {
        let Some(there) = self.positions.get(&node).copied() else {
            return;
        };
        self.record_dwell(there, time);
        self.set(
            node,
            Position {
                station: NO_STATION,
                since: time,
                ..there
            },
        );
    }

    /// The dwell of an identifier leaving `there` at `time`, counted in that hour.
    fn record_dwell(&mut self, there: Position, time: DateTime<Utc>) {
        if there.station == NO_STATION {
            return;
        }
        let seconds = (time - there.since).num_seconds().max(0);
        let counts = self
            .dwell
            .entry((hour_of(time), there.station, bucket_of(seconds)))
            .or_default();
        counts.visits += 1;
        counts.total_seconds += seconds;
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;

    const LINE: i64 = 10;
    const PACKING: i64 = 11;

    fn at(minutes: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_796_000_400, 0).expect("a time") + TimeDelta::minutes(minutes)
    }

    fn step(minutes: i64, station: i64, passed: Option<bool>, arriving: &[i64]) -> Step {
        Step {
            time: at(minutes),
            station,
            inspection_passed: passed,
            arriving: arriving.to_vec(),
            leaving: Vec::new(),
        }
    }

    #[test]
    fn a_reinspection_is_not_a_first_pass() {
        let mut rollup = Rollup::default();
        rollup.apply(&step(0, LINE, None, &[1, 2]));
        rollup.apply(&step(5, LINE, Some(false), &[1]));
        rollup.apply(&step(6, LINE, Some(true), &[2]));
        rollup.apply(&step(9, LINE, Some(true), &[1]));
        let counts = rollup.hours[&(hour_of(at(0)), LINE)];
        assert_eq!(
            counts,
            HourCounts {
                events: 4,
                inspected: 2,
                passed_first_time: 1
            }
        );
    }

    #[test]
    fn dwell_runs_from_arrival_to_the_first_event_elsewhere() {
        let mut rollup = Rollup::default();
        rollup.apply(&step(0, LINE, None, &[1]));
        rollup.apply(&step(3, LINE, Some(true), &[1]));
        rollup.apply(&step(20, PACKING, None, &[1]));
        let mut shipped = step(90, 99, None, &[]);
        shipped.leaving = vec![1];
        rollup.apply(&shipped);
        assert_eq!(
            rollup.dwell.get(&(hour_of(at(20)), LINE, bucket_of(1_200))),
            Some(&DwellCounts {
                visits: 1,
                total_seconds: 1_200
            }),
            "20 minutes on the line, from its first event there: {:?}",
            rollup.dwell
        );
        assert_eq!(
            rollup
                .dwell
                .get(&(hour_of(at(90)), PACKING, bucket_of(4_200))),
            Some(&DwellCounts {
                visits: 1,
                total_seconds: 4_200
            })
        );
        assert_eq!(rollup.positions[&1].station, NO_STATION, "shipped");
    }

    #[test]
    fn stored_positions_carry_on_and_only_changes_are_written() {
        let before = Position {
            station: LINE,
            since: at(0),
            inspected: true,
        };
        let mut rollup = Rollup::from_positions(HashMap::from([(1, before), (2, before)]));
        rollup.apply(&step(30, LINE, Some(false), &[1]));
        rollup.apply(&step(40, PACKING, None, &[2]));
        let counts = rollup.hours[&(hour_of(at(30)), LINE)];
        assert_eq!(counts.inspected, 0, "inspected before this run");
        let changed: Vec<i64> = rollup.changed_positions().map(|(node, _)| node).collect();
        assert_eq!(changed, vec![2]);
        assert_eq!(
            rollup.dwell.keys().collect::<Vec<_>>(),
            vec![&(hour_of(at(40)), LINE, bucket_of(2_400))]
        );
    }

    #[test]
    fn buckets_split_at_their_bounds() {
        assert_eq!(bucket_of(0), 0);
        assert_eq!(bucket_of(59), 0);
        assert_eq!(bucket_of(60), 1);
        assert_eq!(bucket_of(86_399), 5);
        assert_eq!(bucket_of(86_400), 6);
    }
}
