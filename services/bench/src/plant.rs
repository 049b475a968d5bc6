//! A synthetic plant: deterministic (seeded) EPCIS traffic shaped like a real line.
//!
//! Each production run receives supplier lots (with the supplier as source), mixes them
//! into a batch, makes an intermediate, serialises finished units under a finished lot,
//! packs units into cases and cases onto a pallet (with an occasional unpack/repack),
//! ships the pallet to a customer, and now and then decommissions a unit or declares a
//! packing event erroneous. Units are inspected on their line (line 2 fails a few more
//! first inspections). Each step scans at its own station (goods-in, mixing, line 1 or 2,
//! packing, dispatch) and takes its own time, so the stations have work in progress and
//! dwell times to show. The same seed and size always give the same events.

use prost_types::{Struct, Timestamp, Value, value::Kind};
use rand::{Rng, SeedableRng, rngs::SmallRng};
use tracery_proto::v1::{self as pb, epcis_event::Body};

/// Units per case and cases per pallet.
const UNITS_PER_CASE: usize = 10;
const CASES_PER_PALLET: usize = 4;
const SUPPLIERS: usize = 20;
const CUSTOMERS: usize = 50;
/// The first event's time: 2026-01-01T00:00:00Z.
const START: i64 = 1_767_225_600;
const GOODS_IN: &str = "urn:epc:id:sgln:4012345.00001.1";
const MIXING: &str = "urn:epc:id:sgln:4012345.00002.1";
const LINES: [&str; 2] = [
    "urn:epc:id:sgln:4012345.00003.1",
    "urn:epc:id:sgln:4012345.00003.2",
];
const PACKING: &str = "urn:epc:id:sgln:4012345.00004.1";
const DISPATCH: &str = "urn:epc:id:sgln:4012345.00005.1";

/// How units fail their first inspection.
#[derive(Debug, Clone)]
pub enum Failures {
    /// The default plant: 3 % on line 1, 8 % on line 2, each run receiving its own
    /// supplier lots.
    ByLine,
    /// A uniform rate, raised by the planted causes given; supplier lots last several
    /// runs (material m's for m + 3 runs), as real lots do, so that a lot is told apart
    /// from the runs, batches and lines that used it.
    Planted(Planted),
}

/// A plant with known causes of failure, for common-cause analysis.
#[derive(Debug, Clone, Default)]
pub struct Planted {
    /// Every unit's chance of failing its first inspection.
    pub base_rate: f64,
    /// Units made from [`PLANTED_LOT`] of material 0 fail this many times as often.
    pub lot_factor: Option<f64>,
    /// Units made on line 2 during runs [`PLANTED_WINDOW`] fail this many times as often.
    pub station_factor: Option<f64>,
}

/// The material-0 supplier lot a planted lot cause raises (used by runs 30 to 32).
pub const PLANTED_LOT: usize = 10;
/// The runs during which a planted station cause raises line 2's failures.
pub const PLANTED_WINDOW: std::ops::Range<usize> = 40..100;

/// The plant generator; iterate it for events.
pub struct Plant {
    failures: Failures,
    /// Planted causes as they came out: the lot's class URI, and the window of line 2's
    /// raised failures (from the start of run 40 to the start of run 100, in seconds).
    pub planted_lot: Option<String>,
    pub planted_window: Option<(i64, i64)>,
    rng: SmallRng,
    remaining: usize,
    pending: std::collections::VecDeque<pb::EpcisEvent>,
    run: usize,
    clock: i64,
    next_event: u64,
    seed: u64,
    /// Identifiers worth tracing: supplier lots and finished units, a sample of each.
    pub supplier_lots: Vec<String>,
    pub units: Vec<String>,
}

fn class(item: usize, lot: &str) -> String {
    format!("urn:epc:class:lgtin:4012345.{item:06}.{lot}")
}

fn quantity(epc_class: String, amount: f64) -> pb::QuantityElement {
    pb::QuantityElement {
        epc_class,
        quantity: Some(amount),
        uom: "KGM".into(),
    }
}

fn location(id: &str) -> Option<pb::Location> {
    Some(pb::Location {
        id: id.into(),
        extensions: None,
    })
}

impl Plant {
    /// `events` events from `seed` (0 to 9: identifiers have room for one digit).
    pub fn new(seed: u64, events: usize) -> Self {
        Self::with_failures(seed, events, Failures::ByLine)
    }

    /// `events` events from `seed` whose units fail as `failures` says.
    pub fn with_failures(seed: u64, events: usize, failures: Failures) -> Self {
        Self {
            failures,
            planted_lot: None,
            planted_window: None,
            rng: SmallRng::seed_from_u64(seed),
            remaining: events,
            pending: Default::default(),
            run: 0,
            clock: START,
            next_event: 0,
            seed,
            supplier_lots: Vec::new(),
            units: Vec::new(),
        }
    }

    /// The station that scans `biz_step`, and the seconds the step takes.
    fn station(&self, biz_step: &str) -> (&'static str, i64) {
        let line = LINES[self.run % 2];
        match biz_step {
            "receiving" => (GOODS_IN, 30),
            "commissioning" | "inspecting" | "decommissioning" => (line, 20),
            "packing" | "unpacking" => (PACKING, 15),
            "shipping" => (DISPATCH, 240),
            _ => (GOODS_IN, 1),
        }
    }

    fn event(&mut self, biz_step: &str, body: Body) -> pb::EpcisEvent {
        let (station, seconds) = self.station(biz_step);
        self.clock += seconds;
        self.next_event += 1;
        pb::EpcisEvent {
            event_id: format!(
                "urn:uuid:{:08x}-0000-4000-8000-{:012x}",
                self.seed as u32, self.next_event
            ),
            event_time: Some(Timestamp {
                seconds: self.clock,
                nanos: 0,
            }),
            event_time_zone_offset: "+00:00".into(),
            biz_step: biz_step.into(),
            read_point: location(station),
            biz_location: location("urn:epc:id:sgln:4012345.00001.0"),
            body: Some(body),
            ..Default::default()
        }
    }

    /// An event scanned at `station` rather than the step's usual one.
    fn event_at(&mut self, station: &str, biz_step: &str, body: Body) -> pb::EpcisEvent {
        let mut event = self.event(biz_step, body);
        event.read_point = location(station);
        event
    }

    /// The units' inspection on their line: conformant, or (now and then, more often on
    /// line 2) non-conformant, reworked and passed at a second inspection.
    fn inspections(&mut self, units: &[String]) -> Vec<pb::EpcisEvent> {
        let failure_rate = self.failure_rate();
        let inspect = |plant: &mut Self, epcs: Vec<String>, disposition: &str| {
            let mut event = plant.event(
                "inspecting",
                Body::ObjectEvent(pb::ObjectEvent {
                    action: pb::Action::Observe.into(),
                    epcs,
                    ..Default::default()
                }),
            );
            event.disposition = disposition.into();
            event
        };
        let (failed, passed): (Vec<String>, Vec<String>) = units
            .iter()
            .cloned()
            .partition(|_| self.rng.random_bool(failure_rate));
        let mut events = Vec::new();
        if !passed.is_empty() {
            events.push(inspect(self, passed, "conformant"));
        }
        if !failed.is_empty() {
            events.push(inspect(self, failed.clone(), "non_conformant"));
            events.push(inspect(self, failed, "conformant"));
        }
        events
    }

    /// The chance that a unit of the current run fails its first inspection.
    fn failure_rate(&self) -> f64 {
        let on_line_2 = !self.run.is_multiple_of(2);
        match &self.failures {
            Failures::ByLine if on_line_2 => 0.08,
            Failures::ByLine => 0.03,
            Failures::Planted(planted) => {
                // `self.run` has already moved past the run being made.
                let run = self.run - 1;
                let lot = planted.lot_factor.filter(|_| Self::uses_planted_lot(run));
                let station = planted
                    .station_factor
                    .filter(|_| on_line_2 && PLANTED_WINDOW.contains(&run));
                let factor = lot.unwrap_or(1.0) * station.unwrap_or(1.0);
                (planted.base_rate * factor).min(1.0)
            }
        }
    }

    /// Whether run `run` uses the planted lot ([`PLANTED_LOT`] of material 0).
    fn uses_planted_lot(run: usize) -> bool {
        Self::material_lot(0, run) == PLANTED_LOT
    }

    /// Which lot of `material` run `run` uses, in a plant whose lots last several runs.
    fn material_lot(material: usize, run: usize) -> usize {
        run / (material + 3)
    }

    /// The supplier lots of the current run (`run` numbered with the seed), and whether
    /// each is received now (its first run).
    fn supplier_lots(&self, run: usize) -> Vec<(String, bool)> {
        match self.failures {
            Failures::ByLine => (0..3)
                .map(|i| (class(1, &format!("S{run}-{i}")), true))
                .collect(),
            Failures::Planted(_) => {
                let this_run = self.run - 1;
                (0..3)
                    .map(|material| {
                        let lot = Self::material_lot(material, this_run);
                        let first = this_run.is_multiple_of(material + 3);
                        (
                            class(10 + material, &format!("S{}L{lot}", self.seed)),
                            first,
                        )
                    })
                    .collect()
            }
        }
    }

    fn aggregation(
        &mut self,
        action: pb::Action,
        parent: &str,
        children: Vec<String>,
    ) -> pb::EpcisEvent {
        let step = if action == pb::Action::Add {
            "packing"
        } else {
            "unpacking"
        };
        self.event(
            step,
            Body::AggregationEvent(pb::AggregationEvent {
                action: action.into(),
                parent_id: parent.into(),
                child_epcs: children,
                child_quantities: Vec::new(),
            }),
        )
    }

    /// Remembers where the planted causes fell, for reports.
    fn note_planted(&mut self, supplier_lots: &[String]) {
        let Failures::Planted(planted) = &self.failures else {
            return;
        };
        let run = self.run - 1;
        if planted.lot_factor.is_some() && Self::uses_planted_lot(run) {
            self.planted_lot = Some(supplier_lots[0].clone());
        }
        if planted.station_factor.is_some() {
            if run == PLANTED_WINDOW.start {
                self.planted_window = Some((self.clock, i64::MAX));
            } else if run == PLANTED_WINDOW.end
                && let Some((from, _)) = self.planted_window
            {
                self.planted_window = Some((from, self.clock));
            }
        }
    }

    /// One production run's events.
    fn production_run(&mut self) -> Vec<pb::EpcisEvent> {
        // Identifiers carry the seed, so plants of different seeds never share one.
        let run = self.seed as usize * 1_000_000 + self.run;
        self.run += 1;
        let mut out = Vec::new();
        let lots = self.supplier_lots(run);
        let supplier_lots: Vec<String> = lots.iter().map(|(lot, _)| lot.clone()).collect();
        self.note_planted(&supplier_lots);
        for (lot, _) in lots.iter().filter(|(_, received_now)| *received_now) {
            let supplier = format!(
                "urn:epc:id:pgln:4012345.1{:04}",
                self.rng.random_range(0..SUPPLIERS)
            );
            let mut receipt = self.event(
                "receiving",
                Body::ObjectEvent(pb::ObjectEvent {
                    action: pb::Action::Observe.into(),
                    quantities: vec![quantity(lot.clone(), 500.0)],
                    ..Default::default()
                }),
            );
            receipt.sources = vec![pb::SourceDestination {
                r#type: "owning_party".into(),
                id: supplier,
            }];
            out.push(receipt);
        }
        if self.run % 10 == 1 {
            self.supplier_lots.push(supplier_lots[0].clone());
        }
        let batch = class(2, &format!("B{run}"));
        out.push(
            self.event_at(
                MIXING,
                "commissioning",
                Body::TransformationEvent(pb::TransformationEvent {
                    input_quantities: supplier_lots
                        .iter()
                        .map(|l| quantity(l.clone(), 300.0))
                        .collect(),
                    output_quantities: vec![quantity(batch.clone(), 900.0)],
                    ..Default::default()
                }),
            ),
        );
        let intermediate = class(3, &format!("I{run}"));
        out.push(self.event_at(
            MIXING,
            "commissioning",
            Body::TransformationEvent(pb::TransformationEvent {
                input_quantities: vec![quantity(batch, 900.0)],
                output_quantities: vec![quantity(intermediate.clone(), 880.0)],
                ..Default::default()
            }),
        ));
        let finished_lot = format!("F{run}");
        let mut cases = Vec::new();
        for case_no in 0..CASES_PER_PALLET {
            let units: Vec<String> = (0..UNITS_PER_CASE)
                .map(|u| format!("urn:epc:id:sgtin:4012345.000004.{run}-{case_no}-{u}"))
                .collect();
            out.push(
                self.event(
                    "commissioning",
                    Body::TransformationEvent(pb::TransformationEvent {
                        input_quantities: vec![quantity(intermediate.clone(), 22.0)],
                        output_epcs: units.clone(),
                        ilmd: Some(Struct {
                            fields: [(
                                "cbvmda:lotNumber".to_owned(),
                                Value {
                                    kind: Some(Kind::StringValue(finished_lot.clone())),
                                },
                            )]
                            .into(),
                        }),
                        ..Default::default()
                    }),
                ),
            );
            out.extend(self.inspections(&units));
            if self.run % 10 == 1 && case_no == 0 {
                self.units.push(units[0].clone());
            }
            let case = format!("urn:epc:id:sscc:4012345.{:010}", run * 100 + case_no + 1);
            debug_assert!(case.len() == 34, "SSCC serial reference overflow");
            out.push(self.aggregation(pb::Action::Add, &case, units.clone()));
            cases.push((case, units));
        }
        // Now and then a unit is unpacked and repacked into the next case.
        if self.rng.random_bool(0.1) {
            let moved = cases[0].1[0].clone();
            let (from, to) = (cases[0].0.clone(), cases[1].0.clone());
            out.push(self.aggregation(pb::Action::Delete, &from, vec![moved.clone()]));
            out.push(self.aggregation(pb::Action::Add, &to, vec![moved]));
        }
        let pallet = format!("urn:epc:id:sscc:4012345.{:010}", run * 100 + 99);
        let case_ids: Vec<String> = cases.iter().map(|c| c.0.clone()).collect();
        out.push(self.aggregation(pb::Action::Add, &pallet, case_ids));
        // Now and then the palletising is declared erroneous (the cases ship loose).
        if self.rng.random_bool(0.05)
            && let Some(mut declaration) = out.last().cloned()
        {
            declaration.error_declaration = Some(pb::ErrorDeclaration {
                declaration_time: Some(Timestamp {
                    seconds: self.clock + 1,
                    nanos: 0,
                }),
                reason: "incorrect_data".into(),
                ..Default::default()
            });
            out.push(declaration);
        }
        if self.rng.random_bool(0.2) {
            let unit = cases[2].1[UNITS_PER_CASE - 1].clone();
            out.push(self.event(
                "decommissioning",
                Body::ObjectEvent(pb::ObjectEvent {
                    action: pb::Action::Delete.into(),
                    epcs: vec![unit],
                    ..Default::default()
                }),
            ));
        }
        let customer = format!(
            "urn:epc:id:pgln:4012345.2{:04}",
            self.rng.random_range(0..CUSTOMERS)
        );
        let mut shipping = self.event(
            "shipping",
            Body::ObjectEvent(pb::ObjectEvent {
                action: pb::Action::Observe.into(),
                epcs: vec![pallet],
                ..Default::default()
            }),
        );
        shipping.disposition = "in_transit".into();
        shipping.destinations = vec![pb::SourceDestination {
            r#type: "owning_party".into(),
            id: customer,
        }];
        out.push(shipping);
        out
    }
}

impl Iterator for Plant {
    type Item = pb::EpcisEvent;

    fn next(&mut self) -> Option<pb::EpcisEvent> {
        if self.remaining == 0 {
            return None;
        }
        if self.pending.is_empty() {
            let run = self.production_run();
            self.pending.extend(run);
        }
        self.remaining -= 1;
        self.pending.pop_front()
    }
}

/// A plant event in EPCIS 2.0 JSON-LD.
pub fn event_json(event: &pb::EpcisEvent) -> anyhow::Result<serde_json::Value> {
    let event = tracery_epcis::proto::event_from_proto(event)?;
    Ok(tracery_epcis::json::event_to_json(&event))
}

/// An EPCISDocument of `events` (JSON-LD).
pub fn document(events: &[serde_json::Value]) -> serde_json::Value {
    serde_json::json!({
        "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2026-11-26T00:00:00Z",
        "epcisBody": {"eventList": events},
    })
}
