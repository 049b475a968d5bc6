//! Property test: on randomly generated plants, every trace, time-travel trace and
//! containment answer of the projection equals a brute-force oracle that recomputes the
//! answer from the raw event list (error declarations included), on a real SQLite store,
//! or a fresh PostgreSQL database per plant where `TRACERY_TEST_DATABASE_URL` names one.
//! Each plant is applied in batches of random size (one event, or many written as runs),
//! each batch twice, since replaying a stream must change nothing.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use chrono::{DateTime, Duration, FixedOffset, TimeZone, Utc};
use proptest::prelude::*;

mod common;
use common::Store;
use sea_orm_migration::MigratorTrait;
use tracery_epcis::{
    Action, AggregationEvent, ErrorDeclaration, Event, EventKind, ObjectEvent, QuantityElement,
    SourceDestination, TransformationEvent,
};
use tracery_genealogy::{
    facts::{self, node_id},
    graph::{self, Direction, Limits},
    store::{Migrator, ProjectionStore},
};

const LOTS: usize = 4;
const UNITS: usize = 8;
const CASES: usize = 4;
const PARTIES: usize = 2;

fn lot(i: usize) -> String {
    format!("urn:epc:class:lgtin:4012345.000002.L{i}")
}
fn unit(i: usize) -> String {
    format!("urn:epc:id:sgtin:4012345.000002.{i}")
}
fn case(i: usize) -> String {
    format!("urn:epc:id:sscc:4012345.00000001{i:02}")
}
fn party(i: usize) -> String {
    format!("urn:epc:id:pgln:4012345.0009{i}")
}

/// A generated plant operation.
#[derive(Debug, Clone)]
enum Op {
    Transform {
        inputs: Vec<usize>,
        lot_outputs: Vec<usize>,
        unit_outputs: Vec<usize>,
    },
    Commission {
        units: Vec<usize>,
        lot: usize,
    },
    Pack {
        parent: usize,
        units: Vec<usize>,
        cases: Vec<usize>,
    },
    Unpack {
        parent: usize,
        units: Vec<usize>,
        cases: Vec<usize>,
    },
    Ship {
        units: Vec<usize>,
        cases: Vec<usize>,
        party: usize,
    },
    Receive {
        lots: Vec<usize>,
        party: usize,
    },
    /// Declares the n-th earlier operation (modulo) erroneous.
    Declare(usize),
}

fn subset(max: usize) -> impl Strategy<Value = Vec<usize>> {
    proptest::collection::btree_set(0..max, 0..3).prop_map(|s| s.into_iter().collect())
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (subset(LOTS), subset(LOTS), subset(UNITS)).prop_map(|(inputs, lot_outputs, unit_outputs)| {
            Op::Transform { inputs, lot_outputs, unit_outputs }
        }),
        2 => (subset(UNITS), 0..LOTS).prop_map(|(units, lot)| Op::Commission { units, lot }),
        4 => (0..CASES, subset(UNITS), subset(CASES))
            .prop_map(|(parent, units, cases)| Op::Pack { parent, units, cases }),
        2 => (0..CASES, subset(UNITS), subset(CASES))
            .prop_map(|(parent, units, cases)| Op::Unpack { parent, units, cases }),
        2 => (subset(UNITS), subset(CASES), 0..PARTIES)
            .prop_map(|(units, cases, party)| Op::Ship { units, cases, party }),
        1 => (subset(LOTS), 0..PARTIES).prop_map(|(lots, party)| Op::Receive { lots, party }),
        1 => any::<usize>().prop_map(Op::Declare),
    ]
}

fn time(minute: usize) -> DateTime<FixedOffset> {
    Utc.timestamp_opt(1_795_651_200 + 60 * minute as i64, 0)
        .single()
        .expect("valid")
        .fixed_offset()
}

fn base(id: String, minute: usize, kind: EventKind) -> Event {
    Event {
        event_id: Some(id),
        ..Event::new(kind, time(minute))
    }
}

fn children(units: &[usize], cases: &[usize], parent: usize) -> Vec<String> {
    units
        .iter()
        .map(|&u| unit(u))
        .chain(cases.iter().filter(|&&c| c != parent).map(|&c| case(c)))
        .collect()
}

fn quantities(lots: &[usize]) -> Vec<QuantityElement> {
    common::one_of_each(lots.iter().map(|&l| lot(l)))
}

/// The events of a plant: each operation at its own minute, declarations repeating the
/// declared event with an errorDeclaration.
fn events(ops: &[Op]) -> (Vec<Event>, BTreeSet<String>) {
    let mut events: Vec<Event> = Vec::new();
    let mut declared = BTreeSet::new();
    for (minute, op) in ops.iter().enumerate() {
        let id = format!("urn:uuid:00000000-0000-4000-8000-{minute:012}");
        let event = match op {
            Op::Transform {
                inputs,
                lot_outputs,
                unit_outputs,
            } => base(
                id,
                minute,
                EventKind::Transformation(TransformationEvent {
                    input_epcs: Vec::new(),
                    input_quantities: quantities(inputs),
                    output_epcs: unit_outputs.iter().map(|&u| unit(u)).collect(),
                    output_quantities: quantities(lot_outputs),
                    transformation_id: None,
                    ilmd: None,
                }),
            ),
            Op::Commission { units, lot } => base(
                id,
                minute,
                EventKind::Object(ObjectEvent {
                    action: Action::Add,
                    epcs: units.iter().map(|&u| unit(u)).collect(),
                    quantities: Vec::new(),
                    ilmd: Some(
                        [("cbvmda:lotNumber".to_owned(), format!("L{lot}").into())]
                            .into_iter()
                            .collect(),
                    ),
                }),
            ),
            Op::Pack {
                parent,
                units,
                cases,
            }
            | Op::Unpack {
                parent,
                units,
                cases,
            } => {
                let action = if matches!(op, Op::Pack { .. }) {
                    Action::Add
                } else {
                    Action::Delete
                };
                let children = children(units, cases, *parent);
                if children.is_empty() {
                    continue;
                }
                base(
                    id,
                    minute,
                    EventKind::Aggregation(AggregationEvent {
                        action,
                        parent_id: Some(case(*parent)),
                        child_epcs: children,
                        child_quantities: Vec::new(),
                    }),
                )
            }
            Op::Ship {
                units,
                cases,
                party: to,
            } => {
                let mut event = base(
                    id,
                    minute,
                    EventKind::Object(ObjectEvent {
                        action: Action::Observe,
                        epcs: children(units, cases, usize::MAX),
                        quantities: Vec::new(),
                        ilmd: None,
                    }),
                );
                event.destinations = vec![SourceDestination {
                    kind: "owning_party".into(),
                    id: party(*to),
                }];
                event
            }
            Op::Receive { lots, party: from } => {
                let mut event = base(
                    id,
                    minute,
                    EventKind::Object(ObjectEvent {
                        action: Action::Observe,
                        epcs: Vec::new(),
                        quantities: quantities(lots),
                        ilmd: None,
                    }),
                );
                event.sources = vec![SourceDestination {
                    kind: "owning_party".into(),
                    id: party(*from),
                }];
                event
            }
            Op::Declare(n) => {
                let candidates: Vec<&Event> = events
                    .iter()
                    .filter(|e| e.error_declaration.is_none())
                    .collect();
                if candidates.is_empty() {
                    continue;
                }
                let mut declaration = candidates[n % candidates.len()].clone();
                declared.insert(declaration.event_id.clone().unwrap_or_default());
                declaration.error_declaration = Some(ErrorDeclaration {
                    declaration_time: time(minute),
                    reason: None,
                    corrective_event_ids: Vec::new(),
                    extensions: Default::default(),
                });
                declaration
            }
        };
        events.push(event);
    }
    (events, declared)
}

/// A containment interval: (child, parent, start, end).
type Interval = (String, String, DateTime<Utc>, Option<DateTime<Utc>>);

/// The oracle's view: every link and containment interval, recomputed from the events
/// that still count.
#[derive(Default)]
struct Oracle {
    /// (from, to, time): transformations, lot membership (serial → lot), shipments.
    transformed: Vec<(String, String, DateTime<Utc>)>,
    members: Vec<(String, String, DateTime<Utc>)>,
    shipped: Vec<(String, String, DateTime<Utc>)>,
    /// (party, item, time).
    received: Vec<(String, String, DateTime<Utc>)>,
    intervals: Vec<Interval>,
}

impl Oracle {
    fn new(events: &[Event], declared: &BTreeSet<String>) -> Self {
        let mut oracle = Self::default();
        let mut open: BTreeMap<String, usize> = BTreeMap::new();
        for event in events {
            let id = event.event_id.clone().unwrap_or_default();
            if event.error_declaration.is_some() || declared.contains(&id) {
                continue;
            }
            let t = event.event_time.to_utc();
            match &event.kind {
                EventKind::Transformation(e) => {
                    for input in &e.input_quantities {
                        let outputs = e
                            .output_epcs
                            .iter()
                            .chain(e.output_quantities.iter().map(|q| &q.epc_class));
                        for output in outputs {
                            oracle.transformed.push((
                                node_id(&input.epc_class),
                                node_id(output),
                                t,
                            ));
                        }
                    }
                }
                EventKind::Object(e) => {
                    if let Some(lot_number) = e
                        .ilmd
                        .as_ref()
                        .and_then(|i| i.get("cbvmda:lotNumber"))
                        .and_then(|v| v.as_str())
                    {
                        for epc in &e.epcs {
                            let lot = node_id(&format!(
                                "urn:epc:class:lgtin:4012345.000002.{lot_number}"
                            ));
                            oracle.members.push((node_id(epc), lot, t));
                        }
                    }
                    let items: Vec<String> = e
                        .epcs
                        .iter()
                        .chain(e.quantities.iter().map(|q| &q.epc_class))
                        .map(|i| node_id(i))
                        .collect();
                    for destination in &event.destinations {
                        for item in &items {
                            oracle
                                .shipped
                                .push((item.clone(), node_id(&destination.id), t));
                        }
                    }
                    for source in &event.sources {
                        for item in &items {
                            oracle.received.push((node_id(&source.id), item.clone(), t));
                        }
                    }
                }
                EventKind::Aggregation(e) => {
                    let parent = node_id(e.parent_id.as_deref().unwrap_or_default());
                    for child in e.child_epcs.iter().map(|c| node_id(c)) {
                        let current = open.get(&child).copied();
                        match e.action {
                            Action::Add => {
                                if let Some(index) = current {
                                    oracle.intervals[index].3 = Some(t);
                                }
                                open.insert(child.clone(), oracle.intervals.len());
                                oracle.intervals.push((child, parent.clone(), t, None));
                            }
                            Action::Delete => {
                                if let Some(index) = current
                                    && oracle.intervals[index].1 == parent
                                {
                                    oracle.intervals[index].3 = Some(t);
                                    open.remove(&child);
                                }
                            }
                            Action::Observe => {}
                        }
                    }
                }
                _ => {}
            }
        }
        oracle
    }

    fn neighbours(
        &self,
        node: &str,
        direction: Direction,
        as_of: Option<DateTime<Utc>>,
    ) -> Vec<String> {
        let begun = |t: &DateTime<Utc>| as_of.is_none_or(|as_of| *t <= as_of);
        let mut out = Vec::new();
        match direction {
            Direction::Backward => {
                out.extend(
                    self.transformed
                        .iter()
                        .filter(|l| l.1 == node && begun(&l.2))
                        .map(|l| l.0.clone()),
                );
                out.extend(
                    self.intervals
                        .iter()
                        .filter(|l| l.1 == node && begun(&l.2))
                        .map(|l| l.0.clone()),
                );
                out.extend(
                    self.members
                        .iter()
                        .filter(|l| l.0 == node && begun(&l.2))
                        .map(|l| l.1.clone()),
                );
                out.extend(
                    self.received
                        .iter()
                        .filter(|l| l.1 == node && begun(&l.2))
                        .map(|l| l.0.clone()),
                );
            }
            Direction::Forward => {
                out.extend(
                    self.transformed
                        .iter()
                        .filter(|l| l.0 == node && begun(&l.2))
                        .map(|l| l.1.clone()),
                );
                out.extend(
                    self.intervals
                        .iter()
                        .filter(|l| l.0 == node && begun(&l.2))
                        .map(|l| l.1.clone()),
                );
                out.extend(
                    self.shipped
                        .iter()
                        .filter(|l| l.0 == node && begun(&l.2))
                        .map(|l| l.1.clone()),
                );
                out.extend(
                    self.members
                        .iter()
                        .filter(|l| l.1 == node && begun(&l.2))
                        .map(|l| l.0.clone()),
                );
            }
        }
        out
    }

    fn trace(
        &self,
        start: &str,
        direction: Direction,
        as_of: Option<DateTime<Utc>>,
    ) -> BTreeSet<String> {
        let start = node_id(start);
        let parties = self.parties();
        let mut seen = BTreeSet::from([start.clone()]);
        let mut queue = VecDeque::from([start]);
        while let Some(node) = queue.pop_front() {
            if parties.contains(&node) {
                continue;
            }
            for next in self.neighbours(&node, direction, as_of) {
                if seen.insert(next.clone()) {
                    queue.push_back(next);
                }
            }
        }
        seen
    }

    fn parties(&self) -> BTreeSet<String> {
        self.shipped
            .iter()
            .map(|l| l.1.clone())
            .chain(self.received.iter().map(|l| l.0.clone()))
            .collect()
    }

    /// (parent, child) pairs of the containment tree under `root` at `at` (now if None).
    fn contents(&self, root: &str, at: Option<DateTime<Utc>>) -> BTreeSet<(String, String)> {
        let held = |l: &Interval| match at {
            Some(at) => l.2 <= at && l.3.is_none_or(|end| end > at),
            None => l.3.is_none(),
        };
        let root = node_id(root);
        let mut pairs = BTreeSet::new();
        let mut seen = BTreeSet::from([root.clone()]);
        let mut queue = VecDeque::from([root]);
        while let Some(parent) = queue.pop_front() {
            for link in self.intervals.iter().filter(|l| l.1 == parent && held(l)) {
                if seen.insert(link.0.clone()) {
                    pairs.insert((parent.clone(), link.0.clone()));
                    queue.push_back(link.0.clone());
                }
            }
        }
        pairs
    }
}

fn flatten(node: &graph::Contained, out: &mut BTreeSet<(String, String)>) {
    for child in &node.children {
        out.insert((node.id.clone(), child.id.clone()));
        flatten(child, out);
    }
}

/// Applies the plant's events `batch` at a time (the follower's batches vary with load;
/// a batch is written as runs, one statement per table) and checks every answer.
async fn check(ops: Vec<Op>, batch: usize) -> Result<(), TestCaseError> {
    let (events, declared) = events(&ops);
    for event in &events {
        // Error declarations find an event's links from the nodes it touched.
        let facts = facts::of(event);
        for link in &facts.links {
            prop_assert!(
                facts.touched.contains(&link.from) || facts.touched.contains(&link.to),
                "a link of {:?} with no end the event touched: {:?}",
                event.event_id,
                link
            );
        }
    }
    let (kept, db) = Store::create("tracery_oracle").await;
    Migrator::up(&db, None).await.expect("migrations");
    let store = ProjectionStore::new(db);
    let numbered: Vec<(i64, Event)> = (1..).zip(events.iter().cloned()).collect();
    for chunk in numbered.chunks(batch) {
        prop_assert_eq!(
            store.apply_batch(chunk).await.expect("applies"),
            chunk.len()
        );
        // A replayed batch changes nothing.
        prop_assert_eq!(store.apply_batch(chunk).await.expect("replay"), 0);
    }
    let oracle = Oracle::new(&events, &declared);
    let universe: Vec<String> = (0..LOTS)
        .map(lot)
        .chain((0..UNITS).map(unit))
        .chain((0..CASES).map(case))
        .collect();
    let times = [None, Some(3), Some(8), Some(15)];
    for start in &universe {
        for direction in [Direction::Backward, Direction::Forward] {
            for minute in times {
                let as_of = minute.map(|m| time(m).to_utc() + Duration::seconds(1));
                let limits = Limits {
                    as_of,
                    since: None,
                    max_depth: 1000,
                    max_nodes: 100_000,
                };
                let trace = graph::trace(&store, std::slice::from_ref(start), direction, limits)
                    .await
                    .expect("trace");
                let actual: BTreeSet<String> = trace.nodes.into_iter().map(|n| n.0).collect();
                prop_assert_eq!(
                    actual,
                    oracle.trace(start, direction, as_of),
                    "{:?} from {} as of {:?}",
                    direction,
                    start,
                    minute
                );
            }
        }
    }
    for start in (0..LOTS).map(lot) {
        let limits = Limits {
            as_of: None,
            since: None,
            max_depth: 1000,
            max_nodes: 100_000,
        };
        let recall = graph::recall(&store, std::slice::from_ref(&start), limits)
            .await
            .expect("recall");
        let actual: BTreeSet<String> = recall.items.into_iter().map(|i| i.id).collect();
        let parties = oracle.parties();
        let mut expected = oracle.trace(&start, Direction::Forward, None);
        expected.remove(&node_id(&start));
        expected.retain(|n| !parties.contains(n));
        prop_assert_eq!(actual, expected, "recall scope of {}", start);
    }
    for root in (0..CASES).map(case) {
        for minute in times {
            let at = minute.map(|m| time(m).to_utc() + Duration::seconds(1));
            let tree = graph::contents(&store, &root, at, 100_000)
                .await
                .expect("contents");
            let mut actual = BTreeSet::new();
            flatten(&tree, &mut actual);
            prop_assert_eq!(
                actual,
                oracle.contents(&root, at),
                "contents of {} at {:?}",
                root,
                minute
            );
        }
    }
    kept.drop().await;
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn traces_and_contents_match_the_oracle(
        ops in proptest::collection::vec(op(), 1..24),
        batch in prop_oneof![Just(1usize), 2usize..30],
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(check(ops, batch))?;
    }
}
