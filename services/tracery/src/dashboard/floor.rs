//! The live picture of the plant floor, built from capture's `Subscribe` stream: the
//! recent events, counts per bizStep and read point, work in progress and dwell time per
//! stage, and first-pass yield per line.
//!
//! A stage and a line are both a read point (the station that scanned), the finest place
//! every event names. The picture covers the events since the dashboard started following
//! (a window before the store's head), and holds at most [`MAX_TRACKED`] objects: it is
//! for watching the floor, not for audits, which query the store.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use serde::Serialize;
use tracery_epcis::{
    effects::{Effects, Unpacking},
    proto::event_from_proto,
};
use tracery_proto::v1::{self as pb, epcis_event::Body};

/// Events kept for the live feed.
const FEED_LENGTH: usize = 100;
/// Objects whose whereabouts are tracked; past it the oldest are forgotten.
pub const MAX_TRACKED: usize = 200_000;

/// One event as the live feed shows it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FeedItem {
    pub sequence: i64,
    pub event_id: String,
    #[serde(rename = "type")]
    pub event_type: &'static str,
    pub event_time: String,
    pub biz_step: String,
    pub disposition: String,
    pub read_point: String,
    pub objects: usize,
    pub first_object: String,
}

#[derive(Debug, Default, Clone, Copy)]
struct Dwell {
    total_secs: i64,
    visits: u64,
    longest_secs: i64,
}

#[derive(Debug, Default, Clone, Copy)]
struct Yield {
    inspected: u64,
    passed_first_time: u64,
}

/// Where an object is: its stage and since when (event time, seconds).
#[derive(Debug, Clone, Copy)]
struct Position {
    stage: usize,
    since: i64,
    order: u64,
}

/// The live picture; [`Floor::apply`] one event at a time, in sequence order.
#[derive(Debug, Default)]
pub struct Floor {
    cursor: i64,
    applied: u64,
    feed: VecDeque<FeedItem>,
    counters: BTreeMap<(String, String), u64>,
    stages: Vec<String>,
    stage_index: HashMap<String, usize>,
    positions: HashMap<String, Position>,
    dwell: Vec<Dwell>,
    yields: BTreeMap<String, Yield>,
    inspected_once: HashSet<String>,
    accepted_by_line: BTreeMap<String, u64>,
    /// What each container holds, so a pallet's cases and units move and ship with it.
    contents: HashMap<String, Vec<String>>,
    next_order: u64,
}

/// A stage's row in the overview.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StageView {
    pub stage: String,
    pub work_in_progress: u64,
    pub visits: u64,
    pub mean_dwell_secs: f64,
    pub longest_dwell_secs: i64,
}

/// A line's quality row in the overview.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LineView {
    pub line: String,
    pub events: u64,
    pub inspected: u64,
    pub passed_first_time: u64,
    /// Passed at the first inspection / inspected; `None` before any inspection.
    pub first_pass_yield: Option<f64>,
    pub quarantined: u64,
    /// Quarantined / (stored + quarantined).
    pub quarantine_rate: f64,
}

/// Counts for one bizStep at one read point.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Counter {
    pub biz_step: String,
    pub read_point: String,
    pub events: u64,
}

/// What the dashboard's overview shows.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Overview {
    pub sequence: i64,
    pub events_seen: u64,
    pub feed: Vec<FeedItem>,
    pub counters: Vec<Counter>,
    pub stages: Vec<StageView>,
    /// The stages with the longest mean dwell, slowest first.
    pub bottlenecks: Vec<StageView>,
    pub lines: Vec<LineView>,
    pub quarantined: u64,
}

fn event_type(body: Option<&Body>) -> &'static str {
    match body {
        Some(Body::ObjectEvent(_)) => "ObjectEvent",
        Some(Body::AggregationEvent(_)) => "AggregationEvent",
        Some(Body::TransactionEvent(_)) => "TransactionEvent",
        Some(Body::TransformationEvent(_)) => "TransformationEvent",
        Some(Body::AssociationEvent(_)) => "AssociationEvent",
        None => "Event",
    }
}

/// The objects an event moves or observes, the objects that leave the floor (consumed
/// inputs, retired or destroyed identifiers), and the classes it counts by quantity, all
/// canonical: what [`tracery_epcis::Event::effects`] says the event does.
fn objects(effects: &Effects) -> (Vec<String>, Vec<String>, Vec<String>) {
    // Sets, not scans: an event may name hundreds of thousands of identifiers.
    let named: HashSet<&str> = effects.names.iter().map(|n| n.node.as_str()).collect();
    let mut gone: Vec<String> = effects
        .consumes
        .iter()
        .map(|input| input.node.clone())
        .filter(|node| named.contains(node.as_str()))
        .collect();
    gone.extend(
        effects
            .lifecycle
            .iter()
            .filter(|change| change.effect.retires())
            .map(|change| change.identifier.node.clone()),
    );
    let leaving: HashSet<&str> = gone.iter().map(String::as_str).collect();
    let moved = effects
        .names
        .iter()
        .map(|named| named.node.clone())
        .filter(|node| !leaving.contains(node.as_str()))
        .collect();
    (moved, gone, effects.classes.clone())
}

fn short(urn: &str) -> &str {
    urn.rsplit(':').next().unwrap_or(urn)
}

impl Floor {
    /// An empty picture that will follow on from `cursor`.
    pub fn starting_after(cursor: i64) -> Self {
        Self {
            cursor,
            ..Self::default()
        }
    }

    /// The last sequence applied.
    pub fn cursor(&self) -> i64 {
        self.cursor
    }

    fn stage(&mut self, name: &str) -> usize {
        if let Some(index) = self.stage_index.get(name) {
            return *index;
        }
        self.stages.push(name.to_owned());
        self.dwell.push(Dwell::default());
        self.stage_index
            .insert(name.to_owned(), self.stages.len() - 1);
        self.stages.len() - 1
    }

    /// Takes one stored event into the picture; events at or below the cursor are skipped.
    pub fn apply(&mut self, stored: &pb::StoredEvent) {
        if stored.sequence <= self.cursor {
            return;
        }
        self.cursor = stored.sequence;
        self.applied += 1;
        let Some(event) = &stored.event else { return };
        let body = event.body.as_ref();
        let read_point = event
            .read_point
            .as_ref()
            .map(|l| l.id.clone())
            .filter(|id| !id.is_empty())
            .unwrap_or_else(|| "(no read point)".to_owned());
        let seconds = event.event_time.as_ref().map_or(0, |t| t.seconds);
        // An event the model cannot read (none is stored so) moves nothing.
        let model = event_from_proto(event).ok();
        let effects = model.as_ref().map(|e| e.effects()).unwrap_or_default();
        let inspection_passed = model.as_ref().and_then(|e| e.inspection_passed());
        let leaving = model.as_ref().is_some_and(|e| e.leaves_the_floor());
        let (moved, consumed, lots) = objects(&effects);

        self.feed.push_front(FeedItem {
            sequence: stored.sequence,
            event_id: event.event_id.clone(),
            event_type: event_type(body),
            event_time: crate::views::time(event.event_time.as_ref()),
            biz_step: short(&event.biz_step).to_owned(),
            disposition: short(&event.disposition).to_owned(),
            read_point: read_point.clone(),
            objects: moved.len() + consumed.len() + lots.len(),
            first_object: moved
                .first()
                .or(consumed.first())
                .or(lots.first())
                .cloned()
                .unwrap_or_default(),
        });
        self.feed.truncate(FEED_LENGTH);
        let step = short(&event.biz_step).to_owned();
        *self
            .counters
            .entry((step.clone(), read_point.clone()))
            .or_default() += 1;
        *self.accepted_by_line.entry(read_point.clone()).or_default() += 1;

        if let Some(passed) = inspection_passed {
            let line = self.yields.entry(read_point.clone()).or_default();
            for object in &moved {
                if self.inspected_once.len() < MAX_TRACKED
                    && self.inspected_once.insert(object.clone())
                {
                    line.inspected += 1;
                    line.passed_first_time += u64::from(passed);
                }
            }
        }

        self.pack(effects);
        let stage = self.stage(&read_point);
        for object in &consumed {
            for inside in self.with_contents(object) {
                self.leave(&inside, seconds);
            }
        }
        for object in &moved {
            for inside in self.with_contents(object) {
                if leaving {
                    self.leave(&inside, seconds);
                } else {
                    self.arrive(&inside, stage, seconds);
                }
            }
        }
    }

    /// Keeps what is packed in what, from the event's packing and unpacking.
    fn pack(&mut self, effects: Effects) {
        match effects.unpacking {
            Some(Unpacking::Everything { parent }) => {
                self.contents.remove(&parent);
            }
            Some(Unpacking::Children { parent, children }) => {
                if let Some(inside) = self.contents.get_mut(&parent) {
                    let leaving: HashSet<&String> = children.iter().collect();
                    inside.retain(|child| !leaving.contains(child));
                }
            }
            None => {}
        }
        if let Some(packing) = effects.packing
            && self.contents.len() < MAX_TRACKED
        {
            self.contents
                .entry(packing.parent)
                .or_default()
                .extend(packing.children.into_iter().map(|c| c.node));
        }
    }

    /// `object` and everything packed inside it, however deep.
    fn with_contents(&self, object: &str) -> Vec<String> {
        let mut all = vec![object.to_owned()];
        let mut next = 0;
        while next < all.len() && all.len() < 10_000 {
            if let Some(children) = self.contents.get(&all[next]) {
                all.extend(children.iter().cloned());
            }
            next += 1;
        }
        all
    }

    fn leave(&mut self, object: &str, seconds: i64) {
        self.contents.remove(object);
        if let Some(position) = self.positions.remove(object) {
            self.record_dwell(position, seconds);
        }
    }

    fn arrive(&mut self, object: &str, stage: usize, seconds: i64) {
        match self.positions.get(object).copied() {
            Some(position) if position.stage == stage => return,
            Some(position) => self.record_dwell(position, seconds),
            None if self.positions.len() >= MAX_TRACKED => self.forget_oldest(),
            None => {}
        }
        self.next_order += 1;
        let position = Position {
            stage,
            since: seconds,
            order: self.next_order,
        };
        self.positions.insert(object.to_owned(), position);
    }

    /// Drops the tenth of tracked objects that arrived longest ago.
    fn forget_oldest(&mut self) {
        let mut orders: Vec<u64> = self.positions.values().map(|p| p.order).collect();
        let cut = orders.len() / 10;
        let (_, threshold, _) = orders.select_nth_unstable(cut);
        let threshold = *threshold;
        self.positions.retain(|_, p| p.order > threshold);
    }

    fn record_dwell(&mut self, position: Position, seconds: i64) {
        let dwell = &mut self.dwell[position.stage];
        let spent = (seconds - position.since).max(0);
        dwell.total_secs += spent;
        dwell.visits += 1;
        dwell.longest_secs = dwell.longest_secs.max(spent);
    }

    /// The overview; `quarantined_by_line` counts the entries waiting in quarantine per
    /// read point (they never reach the stream).
    pub fn overview(&self, quarantined_by_line: &BTreeMap<String, u64>) -> Overview {
        let mut wip = vec![0_u64; self.stages.len()];
        for position in self.positions.values() {
            wip[position.stage] += 1;
        }
        let stages: Vec<StageView> = self
            .stages
            .iter()
            .enumerate()
            .map(|(index, name)| {
                let dwell = self.dwell[index];
                StageView {
                    stage: name.clone(),
                    work_in_progress: wip[index],
                    visits: dwell.visits,
                    mean_dwell_secs: if dwell.visits == 0 {
                        0.0
                    } else {
                        dwell.total_secs as f64 / dwell.visits as f64
                    },
                    longest_dwell_secs: dwell.longest_secs,
                }
            })
            .collect();
        let mut stages = stages;
        stages.sort_by(|a, b| a.stage.cmp(&b.stage));
        let mut bottlenecks: Vec<StageView> =
            stages.iter().filter(|s| s.visits > 0).cloned().collect();
        bottlenecks.sort_by(|a, b| b.mean_dwell_secs.total_cmp(&a.mean_dwell_secs));
        bottlenecks.truncate(3);

        let mut line_names: Vec<&String> = self.accepted_by_line.keys().collect();
        line_names.extend(quarantined_by_line.keys());
        line_names.sort();
        line_names.dedup();
        let lines = line_names
            .into_iter()
            .map(|line| {
                let events = self.accepted_by_line.get(line).copied().unwrap_or(0);
                let quarantined = quarantined_by_line.get(line).copied().unwrap_or(0);
                let quality = self.yields.get(line).copied().unwrap_or_default();
                LineView {
                    line: line.clone(),
                    events,
                    inspected: quality.inspected,
                    passed_first_time: quality.passed_first_time,
                    first_pass_yield: (quality.inspected > 0)
                        .then(|| quality.passed_first_time as f64 / quality.inspected as f64),
                    quarantined,
                    quarantine_rate: if events + quarantined == 0 {
                        0.0
                    } else {
                        quarantined as f64 / (events + quarantined) as f64
                    },
                }
            })
            .collect();
        Overview {
            sequence: self.cursor,
            events_seen: self.applied,
            feed: self.feed.iter().take(50).cloned().collect(),
            counters: self
                .counters
                .iter()
                .map(|((biz_step, read_point), events)| Counter {
                    biz_step: biz_step.clone(),
                    read_point: read_point.clone(),
                    events: *events,
                })
                .collect(),
            stages,
            bottlenecks,
            lines,
            quarantined: quarantined_by_line.values().sum(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = "urn:epc:id:sgln:4012345.00003.1";
    const PACKING: &str = "urn:epc:id:sgln:4012345.00004.1";
    const DISPATCH: &str = "urn:epc:id:sgln:4012345.00005.1";
    const CASE: &str = "urn:epc:id:sscc:4012345.0000000001";

    fn stored(
        sequence: i64,
        seconds: i64,
        step: &str,
        disposition: &str,
        point: &str,
        body: Body,
    ) -> pb::StoredEvent {
        pb::StoredEvent {
            sequence,
            event: Some(pb::EpcisEvent {
                event_id: format!("urn:uuid:{sequence}"),
                event_time: Some(prost_types::Timestamp { seconds, nanos: 0 }),
                event_time_zone_offset: "+00:00".into(),
                biz_step: step.into(),
                disposition: disposition.into(),
                read_point: Some(pb::Location {
                    id: point.into(),
                    extensions: None,
                }),
                body: Some(body),
                ..Default::default()
            }),
            trace_parent: String::new(),
        }
    }

    fn units() -> Vec<String> {
        (1..=4)
            .map(|n| format!("urn:epc:id:sgtin:4012345.011111.{n}"))
            .collect()
    }

    fn observe(epcs: Vec<String>) -> Body {
        Body::ObjectEvent(pb::ObjectEvent {
            action: pb::Action::Observe.into(),
            epcs,
            ..Default::default()
        })
    }

    fn stage<'a>(overview: &'a Overview, name: &str) -> &'a StageView {
        overview
            .stages
            .iter()
            .find(|s| s.stage == name)
            .expect("the stage is shown")
    }

    #[test]
    fn units_move_through_stages_and_ship_with_their_case() {
        let mut floor = Floor::default();
        let made = Body::TransformationEvent(pb::TransformationEvent {
            output_epcs: units(),
            ..Default::default()
        });
        floor.apply(&stored(1, 0, "commissioning", "", LINE, made));
        let mut rest = units();
        let first = vec![rest.remove(0)];
        floor.apply(&stored(
            2,
            20,
            "inspecting",
            "non_conformant",
            LINE,
            observe(first.clone()),
        ));
        floor.apply(&stored(
            3,
            20,
            "inspecting",
            "conformant",
            LINE,
            observe(rest),
        ));
        floor.apply(&stored(
            4,
            40,
            "inspecting",
            "conformant",
            LINE,
            observe(first),
        ));
        let overview = floor.overview(&BTreeMap::new());
        assert_eq!(stage(&overview, LINE).work_in_progress, 4);
        let line = &overview.lines[0];
        assert_eq!((line.inspected, line.passed_first_time), (4, 3));
        assert_eq!(
            line.first_pass_yield,
            Some(0.75),
            "a re-inspection is not a first pass"
        );

        let packed = Body::AggregationEvent(pb::AggregationEvent {
            action: pb::Action::Add.into(),
            parent_id: CASE.into(),
            child_epcs: units(),
            child_quantities: Vec::new(),
        });
        floor.apply(&stored(5, 60, "packing", "", PACKING, packed));
        let overview = floor.overview(&BTreeMap::new());
        assert_eq!(stage(&overview, LINE).work_in_progress, 0);
        assert_eq!(
            stage(&overview, PACKING).work_in_progress,
            5,
            "four units and the case"
        );
        assert_eq!(stage(&overview, LINE).mean_dwell_secs, 60.0);

        floor.apply(&stored(
            6,
            360,
            "shipping",
            "in_transit",
            DISPATCH,
            observe(vec![CASE.into()]),
        ));
        let overview = floor.overview(&BTreeMap::from([(LINE.to_owned(), 1)]));
        assert!(
            overview.stages.iter().all(|s| s.work_in_progress == 0),
            "shipped with the case"
        );
        assert_eq!(stage(&overview, PACKING).mean_dwell_secs, 300.0);
        assert_eq!(overview.bottlenecks[0].stage, PACKING);
        let line = overview
            .lines
            .iter()
            .find(|l| l.line == LINE)
            .expect("line");
        assert_eq!((line.events, line.quarantined), (4, 1));
        assert_eq!(line.quarantine_rate, 0.2);
        assert_eq!(overview.feed[0].sequence, 6, "newest first");

        // A replayed event changes nothing.
        floor.apply(&stored(
            6,
            360,
            "shipping",
            "",
            DISPATCH,
            observe(vec![CASE.into()]),
        ));
        assert_eq!(floor.overview(&BTreeMap::new()).events_seen, 6);
    }
}
