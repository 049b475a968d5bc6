//! The counts of unit profiles the projection keeps answer a common-cause analysis exactly
//! as reading every good unit's history does: on generated plants (lots made from lots,
//! lots and units received from suppliers, units made at stations in many hours under
//! production orders, sensor readings, events declared erroneous, events arriving with
//! earlier times), every tested candidate's table, q-value and group, on a real SQLite
//! store or a fresh PostgreSQL database where `TRACERY_TEST_DATABASE_URL` names one.

use chrono::{DateTime, FixedOffset, TimeZone, Utc};
use sea_orm::ConnectionTrait;
use sea_orm_migration::MigratorTrait;
use tracery_epcis::{
    Action, BizTransaction, ErrorDeclaration, Event, EventKind, Location, ObjectEvent,
    QuantityElement, SensorElement, SensorReport, SourceDestination, TransformationEvent,
};
use tracery_genealogy::{
    common_cause::{
        self, Analysis, Request,
        attributes::{SensorBound, Shifts, StepRules},
    },
    store::{Migrator, ProjectionStore},
};

mod common;
use common::Store;

const UNITS: u64 = 160;
const LOTS: u64 = 8;
const STATIONS: u64 = 4;

/// A small deterministic generator (xorshift), so a failing seed can be rerun.
struct Dice(u64);

impl Dice {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }

    fn some(&mut self, n: u64, most: u64) -> Vec<u64> {
        let count = 1 + self.below(most);
        let mut picked: Vec<u64> = (0..count).map(|_| self.below(n)).collect();
        picked.sort_unstable();
        picked.dedup();
        picked
    }
}

fn unit(i: u64) -> String {
    // Two products, so a product's counts are kept apart.
    let product = if i.is_multiple_of(5) { 3 } else { 2 };
    format!("urn:epc:id:sgtin:4012345.00000{product}.{i}")
}
fn lot(i: u64) -> String {
    format!("urn:epc:class:lgtin:4012345.000009.M{i}")
}
fn station(i: u64) -> Location {
    Location {
        id: format!("urn:epc:id:sgln:4012345.00001.{i}"),
        extensions: Default::default(),
    }
}
fn party(i: u64) -> String {
    format!("urn:epc:id:pgln:4012345.0009{i}")
}

fn at(minutes: u64) -> DateTime<FixedOffset> {
    Utc.timestamp_opt(1_795_651_200 + 60 * minutes as i64, 0)
        .single()
        .expect("valid")
        .fixed_offset()
}

fn object(epcs: Vec<String>, quantities: Vec<QuantityElement>, minutes: u64) -> Event {
    Event::new(
        EventKind::Object(ObjectEvent {
            action: Action::Observe,
            epcs,
            quantities,
            ilmd: None,
        }),
        at(minutes),
    )
}

fn quantities(lots: &[u64]) -> Vec<QuantityElement> {
    common::one_of_each(lots.iter().map(|&l| lot(l)))
}

/// One generated event at about `minutes`.
fn event(dice: &mut Dice, minutes: u64, earlier: &[Event]) -> Event {
    let mut event = match dice.below(10) {
        // Lots made from lots.
        0 => Event::new(
            EventKind::Transformation(TransformationEvent {
                input_epcs: Vec::new(),
                input_quantities: quantities(&dice.some(LOTS, 2)),
                output_epcs: Vec::new(),
                output_quantities: quantities(&dice.some(LOTS, 1)),
                transformation_id: None,
                ilmd: None,
            }),
            at(minutes),
        ),
        // Units made from lots.
        1 | 2 => Event::new(
            EventKind::Transformation(TransformationEvent {
                input_epcs: Vec::new(),
                input_quantities: quantities(&dice.some(LOTS, 2)),
                output_epcs: dice.some(UNITS, 12).into_iter().map(unit).collect(),
                output_quantities: Vec::new(),
                transformation_id: None,
                ilmd: None,
            }),
            at(minutes),
        ),
        // Lots, or now and then units, received from a supplier.
        3 => {
            let (epcs, lots) = if dice.below(3) == 0 {
                (
                    dice.some(UNITS, 4).into_iter().map(unit).collect(),
                    Vec::new(),
                )
            } else {
                (Vec::new(), quantities(&dice.some(LOTS, 2)))
            };
            let mut received = object(epcs, lots, minutes);
            received.sources = vec![SourceDestination {
                kind: "owning_party".into(),
                id: party(dice.below(3)),
            }];
            received
        }
        // An earlier event declared erroneous.
        4 if !earlier.is_empty() => {
            let mut declared = earlier[dice.below(earlier.len() as u64) as usize].clone();
            declared.error_declaration = Some(ErrorDeclaration {
                declaration_time: at(minutes),
                reason: None,
                corrective_event_ids: Vec::new(),
                extensions: Default::default(),
            });
            declared
        }
        // Units seen at a station, some under an order, some with a temperature.
        _ => {
            let picked = dice.some(UNITS, 16);
            let mut seen = object(picked.into_iter().map(unit).collect(), Vec::new(), minutes);
            if dice.below(2) == 0 {
                seen.biz_transactions = vec![BizTransaction {
                    kind: Some("prodorder".into()),
                    id: format!("urn:epcglobal:cbv:bt:4012345000016:PO{}", dice.below(4)),
                }];
            }
            if dice.below(4) == 0 {
                seen.sensor_elements = vec![SensorElement {
                    metadata: None,
                    reports: vec![SensorReport {
                        kind: Some("gs1:Temperature".into()),
                        uom: Some("CEL".into()),
                        value: Some(dice.below(12) as f64),
                        ..Default::default()
                    }],
                    extensions: Default::default(),
                }];
            }
            seen
        }
    };
    if event.error_declaration.is_none() {
        event.read_point = Some(station(dice.below(STATIONS)));
        event.event_id = Some(format!(
            "urn:uuid:00000000-0000-4000-8000-{:012}",
            earlier.len()
        ));
    }
    event
}

/// A plant: about 40 minutes between events, now and then one that happened hours before.
fn plant(seed: u64, count: usize) -> Vec<Event> {
    let mut dice = Dice(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut events: Vec<Event> = Vec::new();
    for n in 0..count as u64 {
        let late = if dice.below(8) == 0 { 300 } else { 0 };
        let minutes = (600 + n * 40).saturating_sub(late);
        let next = event(&mut dice, minutes, &events);
        events.push(next);
    }
    events
}

fn request(failed: Vec<String>, each_unit: bool) -> Request {
    Request {
        failed,
        selection: None,
        baseline: Vec::new(),
        // Everything tested is answered, so every table is compared.
        significance: 1.0,
        max_candidates: usize::MAX,
        steps: StepRules {
            shifts: Shifts::starting_at(&[7, 19]).expect("shifts"),
            sensor_bounds: vec![SensorBound {
                kind: "Temperature".into(),
                min: Some(2.0),
                max: Some(8.0),
                uom: Some("CEL".into()),
            }],
        },
        each_unit,
    }
}

/// What must agree: everything but which good units are named as evidence (any of a
/// candidate's holders may be), of which the number must.
fn summary(analysis: &Analysis) -> Vec<String> {
    let mut lines = vec![format!(
        "{:?} failed {} baseline {} tested {}",
        analysis.inconclusive,
        analysis.failed_units,
        analysis.baseline_units,
        analysis.candidates_tested
    )];
    for c in &analysis.candidates {
        lines.push(format!(
            "{:?} {:?} q={:.12} group={} apart={} failed={:?} good={}",
            c.attribute,
            c.table,
            c.q_value,
            c.group,
            c.indistinguishable,
            c.failed_units,
            c.baseline_units.len()
        ));
    }
    lines
}

async fn check(seed: u64) {
    let (kept, db) = Store::create("tracery_counts").await;
    Migrator::up(&db, None).await.expect("migrations");
    let store = ProjectionStore::new(db);
    assert!(store.profiles_complete().await.expect("reads"));
    let events: Vec<(i64, Event)> = (1..).zip(plant(seed, 400)).collect();
    for batch in events.chunks(1 + seed as usize % 37) {
        store.apply_batch(batch).await.expect("applies");
    }
    compare(&store, seed, "kept").await;
    // As a store projected before profiles were kept: none, until they are filled.
    let db = store.connection();
    for statement in [
        "DELETE FROM genealogy_unit_profiles",
        "DELETE FROM genealogy_profile_counts",
        "DELETE FROM genealogy_profile_signatures",
        "UPDATE genealogy_profiles_since SET sequence = 5",
    ] {
        db.execute_unprepared(statement).await.expect("forgets");
    }
    assert!(!store.profiles_complete().await.expect("reads"));
    compare(&store, seed, "read unit by unit before the fill").await;
    let stop = tokio_util::sync::CancellationToken::new();
    store.fill_profiles(&stop).await.expect("fills");
    assert!(store.profiles_complete().await.expect("reads"));
    compare(&store, seed, "filled").await;
    kept.drop().await;
}

/// Analyses of failed units picked by `seed`, from the counts and unit by unit.
async fn compare(store: &ProjectionStore, seed: u64, profiles: &str) {
    let mut dice = Dice(seed + 17);
    for round in 0..4 {
        let failed: Vec<String> = dice.some(UNITS, 40).into_iter().map(unit).collect();
        let counted = common_cause::analyze(store, &request(failed.clone(), false)).await;
        let each = common_cause::analyze(store, &request(failed, true)).await;
        let (counted, each) = (counted.expect("counted"), each.expect("unit by unit"));
        assert_eq!(
            summary(&counted),
            summary(&each),
            "seed {seed}, round {round}, profiles {profiles}: the counts and the units' \
             histories disagree"
        );
    }
}

#[test]
fn counted_profiles_answer_as_every_units_history_does() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    for seed in 1..=6 {
        runtime.block_on(check(seed));
    }
}
