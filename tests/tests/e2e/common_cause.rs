//! Common-cause analysis over the real suite (capture → Subscribe → genealogy).
//!
//! - A small plant of 250 units made over ten hours from three supplier lots on three
//!   lines, where lot C is only ever processed on line 3: failed units are chosen to plant
//!   a cause (or none), and AnalyzeCommonCause must find it, group what cannot be told
//!   apart, and decline on too little or no signal.
//! - `tracery-bench`'s synthetic plant with planted causes (a supplier lot, line 2 during
//!   a window) raising failure rates: the cause is ranked first; with none, plants rarely
//!   show anything significant.

use tonic::Code;
use tracery_bench::plant::{Failures, Plant as SyntheticPlant, Planted};
use tracery_e2e::TestApp;
use tracery_proto::v1::{self as pb, epcis_event::Body};

const LOT_A: &str = "urn:epc:class:lgtin:4012345.000001.SUP-A";
const LOT_B: &str = "urn:epc:class:lgtin:4012345.000001.SUP-B";
const LOT_C: &str = "urn:epc:class:lgtin:4012345.000001.SUP-C";
const LINE_1: &str = "urn:epc:id:sgln:4012345.00001.1";
const LINE_2: &str = "urn:epc:id:sgln:4012345.00001.2";
const LINE_3: &str = "urn:epc:id:sgln:4012345.00001.3";
const HOURS: u32 = 10;
const UNITS_PER_RUN: u32 = 5;

/// Each hour: lots A and B on lines 1 and 2, lot C alone on line 3.
const RUNS: [(&str, &str); 5] = [
    (LOT_A, LINE_1),
    (LOT_A, LINE_2),
    (LOT_B, LINE_1),
    (LOT_B, LINE_2),
    (LOT_C, LINE_3),
];

fn unit(n: u32) -> String {
    format!("urn:epc:id:sgtin:4012345.000004.{n}")
}

fn canonical(written: &str) -> String {
    tracery_gs1::canonical_uri(written).unwrap_or_else(|| written.to_owned())
}

/// The plant: which lot and line made each unit, by unit number.
struct Plant {
    made: Vec<(u32, &'static str, &'static str)>,
}

impl Plant {
    fn units_of(&self, lot: &str) -> Vec<u32> {
        self.made
            .iter()
            .filter(|(_, l, _)| *l == lot)
            .map(|(n, _, _)| *n)
            .collect()
    }
}

/// Captures `events` (none may be quarantined), 500 at a time, and waits for genealogy to
/// have them.
async fn capture_into_genealogy(app: &TestApp, events: Vec<pb::EpcisEvent>) {
    let mut last = 0;
    for chunk in events.chunks(500) {
        let results = app.capture_events(chunk.to_vec()).await;
        assert!(
            results
                .iter()
                .all(|r| r.outcome != pb::CaptureOutcome::Quarantined as i32),
            "{results:?}"
        );
        last = last.max(results.iter().map(|r| r.sequence).max().unwrap_or(0));
    }
    app.await_genealogy(last).await;
}

/// Captures the plant into `app` and waits for genealogy to have it.
async fn build_plant(app: &TestApp) -> Plant {
    build_plant_with(app, |_, _| {}).await
}

/// The plant, with `dress` adding to the event of each run (numbered from 0 in the order
/// they ran; unit `n` was made in run `(n - 1) / 5`).
async fn build_plant_with(app: &TestApp, dress: impl Fn(u32, &mut pb::EpcisEvent)) -> Plant {
    let mut events = Vec::new();
    let mut made = Vec::new();
    let mut next_unit = 1;
    for hour in 0..HOURS {
        for (run, (lot, line)) in RUNS.iter().enumerate() {
            let outputs: Vec<String> = (next_unit..next_unit + UNITS_PER_RUN).map(unit).collect();
            made.extend((next_unit..next_unit + UNITS_PER_RUN).map(|n| (n, *lot, *line)));
            next_unit += UNITS_PER_RUN;
            let seconds = 1_795_680_000 + i64::from(hour) * 3600 + run as i64 * 300;
            events.push(pb::EpcisEvent {
                event_id: format!("urn:uuid:00000000-0000-4000-8000-7{hour:05}{run:06}"),
                event_time: Some(prost_types::Timestamp { seconds, nanos: 0 }),
                event_time_zone_offset: "+00:00".into(),
                biz_step: "commissioning".into(),
                read_point: Some(pb::Location {
                    id: (*line).into(),
                    extensions: None,
                }),
                body: Some(Body::TransformationEvent(pb::TransformationEvent {
                    input_quantities: vec![pb::QuantityElement {
                        epc_class: (*lot).into(),
                        quantity: Some(2.5),
                        uom: "KGM".into(),
                    }],
                    output_epcs: outputs,
                    ..Default::default()
                })),
                ..Default::default()
            });
            let run_number = hour * RUNS.len() as u32 + run as u32;
            dress(run_number, events.last_mut().expect("just pushed"));
        }
    }
    capture_into_genealogy(app, events).await;
    Plant { made }
}

/// The run that made unit `n`.
fn run_of(n: u32) -> u32 {
    (n - 1) / UNITS_PER_RUN
}

/// 15 units of the runs `chosen` picks, spread over them.
fn failures_of_runs(plant: &Plant, chosen: impl Fn(u32) -> bool) -> Vec<String> {
    let units: Vec<u32> = plant
        .made
        .iter()
        .map(|(n, _, _)| *n)
        .filter(|n| chosen(run_of(*n)))
        .collect();
    let step = (units.len() / 15).max(1);
    units.into_iter().step_by(step).take(15).map(unit).collect()
}

/// 15 of lot A's 100 units, spread over both its lines and every hour.
fn lot_a_failures(plant: &Plant) -> Vec<u32> {
    plant
        .units_of(LOT_A)
        .into_iter()
        .step_by(7)
        .take(15)
        .collect()
}

async fn analyze(app: &TestApp, failed: Vec<String>) -> pb::AnalyzeCommonCauseResponse {
    app.genealogy
        .clone()
        .analyze_common_cause(pb::AnalyzeCommonCauseRequest {
            failed,
            ..Default::default()
        })
        .await
        .expect("analysis")
        .into_inner()
}

/// The first candidate of a ranked `answer`, which must be `(kind, value)` with q < 0.01.
fn ranked_first<'a>(
    answer: &'a pb::AnalyzeCommonCauseResponse,
    kind: &str,
    value: &str,
) -> &'a pb::CauseCandidate {
    assert_eq!(
        answer.verdict,
        pb::CauseVerdict::Ranked as i32,
        "{answer:?}"
    );
    let first = &answer.candidates[0];
    assert_eq!(
        (first.kind.as_str(), first.value.as_str()),
        (kind, value),
        "{answer:?}"
    );
    assert!(first.q_value < 0.01, "{first:?}");
    first
}

#[tokio::test]
async fn a_planted_supplier_lot_is_ranked_first() {
    let app = TestApp::spawn().await.expect("suite starts");
    let plant = build_plant(&app).await;
    let failed: Vec<String> = lot_a_failures(&plant).into_iter().map(unit).collect();
    let answer = analyze(&app, failed).await;
    let first = ranked_first(&answer, "lot", canonical(LOT_A).as_str());
    assert_eq!(
        (
            first.failed_with,
            first.failed_without,
            first.baseline_with,
            first.baseline_without
        ),
        (15, 0, 85, 150)
    );
    assert!(first.relative_risk_low > 1.0, "{first:?}");
    assert_eq!(
        first.failed_units.len(),
        15,
        "the evidence names every failed unit"
    );
    assert_eq!(
        first.baseline_units.len(),
        20,
        "and some good units with it too"
    );
    assert!(
        !first.indistinguishable,
        "lot A ran on two lines: {answer:?}"
    );
    assert_eq!(answer.failed_units, 15);
    // Every other unit of the product made in the hours the failed units were made in:
    // all of them, the runs after lot A's last failed unit in its hour included.
    assert_eq!(answer.baseline_units, 235);
    app.stop().await.expect("clean stop");
}

/// The production order of run `run`: seven orders in turn, so that none coincides with
/// a lot, a line or an hour.
fn order_of(run: u32) -> String {
    format!("urn:epcglobal:cbv:bt:4012345000009:PO-{}", run % 7)
}

#[tokio::test]
async fn a_shared_production_order_is_ranked_first() {
    let app = TestApp::spawn().await.expect("suite starts");
    let plant = build_plant_with(&app, |run, event| {
        event.biz_transactions.push(pb::BizTransaction {
            r#type: "prodorder".into(),
            id: order_of(run),
        });
    })
    .await;
    let failed = failures_of_runs(&plant, |run| order_of(run) == order_of(3));
    let answer = analyze(&app, failed).await;
    let first = ranked_first(&answer, "order", order_of(3).as_str());
    assert_eq!(first.failed_with, 15);
    assert!(!first.indistinguishable, "{answer:?}");
    app.stop().await.expect("clean stop");
}

/// A temperature report on each run's event: 9.5 °C on every sixth run, 5 °C otherwise.
fn temperature(run: u32, event: &mut pb::EpcisEvent) {
    let celsius = if run.is_multiple_of(6) { 9.5 } else { 5.0 };
    event.sensor_elements.push(pb::SensorElement {
        reports: vec![pb::SensorReport {
            r#type: "gs1:Temperature".into(),
            value: Some(celsius),
            uom: "CEL".into(),
            ..Default::default()
        }],
        ..Default::default()
    });
}

async fn analyze_with_bounds(
    app: &TestApp,
    failed: Vec<String>,
    sensor_bounds: Vec<pb::SensorBound>,
) -> Result<pb::AnalyzeCommonCauseResponse, tonic::Status> {
    Ok(app
        .genealogy
        .clone()
        .analyze_common_cause(pb::AnalyzeCommonCauseRequest {
            failed,
            sensor_bounds,
            ..Default::default()
        })
        .await?
        .into_inner())
}

fn cold_chain() -> pb::SensorBound {
    pb::SensorBound {
        r#type: "Temperature".into(),
        min: Some(2.0),
        max: Some(8.0),
        uom: "CEL".into(),
    }
}

#[tokio::test]
async fn a_sensor_reading_beyond_its_bounds_is_ranked_first() {
    let app = TestApp::spawn().await.expect("suite starts");
    let plant = build_plant_with(&app, temperature).await;
    let failed = failures_of_runs(&plant, |run| run.is_multiple_of(6));
    let answer = analyze_with_bounds(&app, failed.clone(), vec![cold_chain()])
        .await
        .expect("analysis");
    let first = ranked_first(&answer, "sensor", "gs1:Temperature above 8 CEL");
    assert_eq!(first.failed_with, 15);

    let unbounded = analyze_with_bounds(&app, failed, Vec::new())
        .await
        .expect("analysis");
    assert!(
        unbounded.candidates.iter().all(|c| c.kind != "sensor"),
        "without bounds a reading is no excursion: {unbounded:?}"
    );
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn a_sensor_bound_without_limits_or_upside_down_or_too_many_is_refused_by_name() {
    let app = TestApp::spawn().await.expect("suite starts");
    let plant = build_plant(&app).await;
    let failed: Vec<String> = lot_a_failures(&plant).into_iter().map(unit).collect();
    let open = pb::SensorBound {
        min: None,
        max: None,
        ..cold_chain()
    };
    let upside_down = pb::SensorBound {
        min: Some(8.0),
        max: Some(2.0),
        ..cold_chain()
    };
    for (bounds, field) in [
        (vec![open], "sensor_bounds[0]"),
        (vec![cold_chain(), upside_down], "sensor_bounds[1]"),
        (vec![cold_chain(); 10_000], "10000 bounds; at most 100"),
    ] {
        let status = analyze_with_bounds(&app, failed.clone(), bounds)
            .await
            .expect_err("refused");
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(status.message().contains(field), "{}", status.message());
    }
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn a_lot_only_ever_run_on_one_line_is_grouped_with_that_line() {
    let app = TestApp::spawn().await.expect("suite starts");
    let plant = build_plant(&app).await;
    let failed: Vec<String> = plant
        .units_of(LOT_C)
        .into_iter()
        .step_by(5)
        .take(8)
        .map(unit)
        .collect();
    let answer = analyze(&app, failed).await;
    assert_eq!(
        answer.verdict,
        pb::CauseVerdict::Ranked as i32,
        "{answer:?}"
    );
    let in_first_group: Vec<(&str, &str)> = answer
        .candidates
        .iter()
        .filter(|c| c.group == answer.candidates[0].group)
        .map(|c| (c.kind.as_str(), c.value.as_str()))
        .collect();
    let lot = canonical(LOT_C);
    assert!(
        in_first_group.contains(&("lot", lot.as_str())),
        "{in_first_group:?}"
    );
    assert!(
        in_first_group.contains(&("station", LINE_3)),
        "{in_first_group:?}"
    );
    assert!(
        answer
            .candidates
            .iter()
            .filter(|c| c.group == answer.candidates[0].group)
            .all(|c| c.indistinguishable),
        "{answer:?}"
    );
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn failures_spread_evenly_are_inconclusive_and_two_are_too_few() {
    let app = TestApp::spawn().await.expect("suite starts");
    build_plant(&app).await;
    // One unit an hour, each hour from a different run: lots A and B, lines 1 and 2.
    let spread: Vec<String> = (0..10).map(|k| unit(1 + k * 27)).collect();
    let answer = analyze(&app, spread).await;
    assert_eq!(
        answer.verdict,
        pb::CauseVerdict::Inconclusive as i32,
        "{answer:?}"
    );
    assert!(
        answer.reason.contains("no shared attribute is significant"),
        "{answer:?}"
    );
    assert!(answer.candidates.is_empty(), "never a ranking from noise");

    let answer = analyze(&app, vec![unit(1), unit(2)]).await;
    assert_eq!(answer.verdict, pb::CauseVerdict::Inconclusive as i32);
    assert!(answer.reason.contains("at least 3"), "{}", answer.reason);
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn bad_identifiers_are_listed_back_and_the_rest_analysed() {
    let app = TestApp::spawn().await.expect("suite starts");
    let plant = build_plant(&app).await;
    let mut failed: Vec<String> = lot_a_failures(&plant).into_iter().map(unit).collect();
    failed.insert(2, "01 not a code".to_owned());
    failed.insert(5, unit(99_999));
    let answer = analyze(&app, failed.clone()).await;
    let refused: Vec<(&str, &str)> = answer
        .refused
        .iter()
        .map(|r| (r.field.as_str(), r.written.as_str()))
        .collect();
    assert_eq!(
        refused,
        [
            ("failed[2]", "01 not a code"),
            ("failed[5]", unit(99_999).as_str())
        ]
    );
    assert!(answer.refused[1].reason.contains("unknown"), "{answer:?}");
    assert_eq!(answer.failed_units, 15);
    assert_eq!(answer.verdict, pb::CauseVerdict::Ranked as i32);

    let overlapping = app
        .genealogy
        .clone()
        .analyze_common_cause(pb::AnalyzeCommonCauseRequest {
            failed: failed.clone(),
            baseline: vec![unit(200), failed[0].clone()],
            ..Default::default()
        })
        .await
        .expect_err("a baseline naming a failed unit");
    assert_eq!(overlapping.code(), Code::InvalidArgument);
    assert!(
        overlapping.message().contains("baseline[1]"),
        "{overlapping:?}"
    );
    let empty = app
        .genealogy
        .clone()
        .analyze_common_cause(pb::AnalyzeCommonCauseRequest::default())
        .await
        .expect_err("no failed units");
    assert!(empty.message().contains("failed"), "{empty:?}");
    app.stop().await.expect("clean stop");
}

/// Every unit of the plant inspected an hour after it was made, at one station: those in
/// `failing` found non-conformant, the rest conformant.
async fn inspect(app: &TestApp, plant: &Plant, failing: &[u32]) {
    let mut events = Vec::new();
    for (index, run) in plant.made.chunks(UNITS_PER_RUN as usize).enumerate() {
        let made_at =
            1_795_680_000 + (index / RUNS.len()) as i64 * 3600 + (index % RUNS.len()) as i64 * 300;
        let (bad, good): (Vec<u32>, Vec<u32>) = run
            .iter()
            .map(|(n, _, _)| *n)
            .partition(|n| failing.contains(n));
        for (kind, units) in [("non_conformant", bad), ("conformant", good)] {
            if units.is_empty() {
                continue;
            }
            events.push(pb::EpcisEvent {
                event_id: format!("urn:uuid:00000000-0000-4000-9000-{kind:.>4.4}{index:08}"),
                event_time: Some(prost_types::Timestamp {
                    seconds: made_at + 3600,
                    nanos: 0,
                }),
                event_time_zone_offset: "+00:00".into(),
                biz_step: "inspecting".into(),
                disposition: kind.into(),
                read_point: Some(pb::Location {
                    id: "urn:epc:id:sgln:4012345.00001.9".into(),
                    extensions: None,
                }),
                body: Some(Body::ObjectEvent(pb::ObjectEvent {
                    action: pb::Action::Observe.into(),
                    epcs: units.into_iter().map(unit).collect(),
                    ..Default::default()
                })),
                ..Default::default()
            });
        }
    }
    capture_into_genealogy(app, events).await;
}

#[tokio::test]
async fn failed_units_can_be_selected_by_their_disposition() {
    let app = TestApp::spawn().await.expect("suite starts");
    let plant = build_plant(&app).await;
    let failing = lot_a_failures(&plant);
    inspect(&app, &plant, &failing).await;
    let link = canonical(&unit(1));
    let gtin = link
        .strip_prefix("https://id.gs1.org/01/")
        .and_then(|rest| rest.split('/').next())
        .expect("a GTIN");
    let select = |dispositions: &[&str], product: String| pb::AnalyzeCommonCauseRequest {
        selection: Some(pb::FailedSelection {
            dispositions: dispositions.iter().map(|d| (*d).to_owned()).collect(),
            product,
            ..Default::default()
        }),
        ..Default::default()
    };
    let answer = app
        .genealogy
        .clone()
        .analyze_common_cause(select(
            &["urn:epcglobal:cbv:disp:non_conformant"],
            format!("(01){gtin}"),
        ))
        .await
        .expect("analysis")
        .into_inner();
    assert_eq!(answer.failed_units, 15, "{answer:?}");
    assert_eq!(
        answer.verdict,
        pb::CauseVerdict::Ranked as i32,
        "{answer:?}"
    );
    assert_eq!(answer.candidates[0].value, canonical(LOT_A));

    let nothing = app
        .genealogy
        .clone()
        .analyze_common_cause(select(&["damaged"], String::new()))
        .await
        .expect("analysis")
        .into_inner();
    assert_eq!(nothing.verdict, pb::CauseVerdict::Inconclusive as i32);
    assert!(
        nothing
            .reason
            .contains("the selection names no units: no event with disposition damaged"),
        "{}",
        nothing.reason
    );
    let not_a_product = app
        .genealogy
        .clone()
        .analyze_common_cause(select(&["damaged"], "(00)340123450000000018".to_owned()))
        .await
        .expect_err("an SSCC is no product");
    let too_many: Vec<String> = (0..101).map(|n| format!("urn:example:disp:{n}")).collect();
    let too_many: Vec<&str> = too_many.iter().map(String::as_str).collect();
    let refused = app
        .genealogy
        .clone()
        .analyze_common_cause(select(&too_many, String::new()))
        .await
        .expect_err("too many terms");
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(refused.message().contains("at most 100"), "{refused:?}");
    assert!(
        not_a_product.message().contains("selection.product"),
        "{not_a_product:?}"
    );
    app.stop().await.expect("clean stop");
}

/// A synthetic plant (`tracery-bench`'s) captured into `app`: its failed units (those
/// found non-conformant) and the rest.
async fn capture_plant(
    app: &TestApp,
    seed: u64,
    events: usize,
    planted: Planted,
) -> (Vec<String>, Vec<String>, SyntheticPlant) {
    let mut plant = SyntheticPlant::with_failures(seed, events, Failures::Planted(planted));
    let events: Vec<pb::EpcisEvent> = plant.by_ref().collect();
    let mut failed = std::collections::BTreeSet::new();
    let mut units = std::collections::BTreeSet::new();
    for event in &events {
        if let Some(Body::TransformationEvent(made)) = &event.body {
            units.extend(made.output_epcs.iter().cloned());
        }
        if event.disposition == "non_conformant"
            && let Some(Body::ObjectEvent(inspected)) = &event.body
        {
            failed.extend(inspected.epcs.iter().cloned());
        }
    }
    capture_into_genealogy(app, events).await;
    let good = units.difference(&failed).cloned().collect();
    (failed.into_iter().collect(), good, plant)
}

#[tokio::test]
async fn a_planted_lot_in_the_synthetic_plant_is_ranked_first() {
    let app = TestApp::spawn().await.expect("suite starts");
    let planted = Planted {
        base_rate: 0.02,
        lot_factor: Some(10.0),
        ..Default::default()
    };
    let (failed, _, plant) = capture_plant(&app, 11, 3_000, planted).await;
    let answer = analyze(&app, failed).await;
    assert_eq!(
        answer.verdict,
        pb::CauseVerdict::Ranked as i32,
        "{answer:?}"
    );
    let lot = canonical(plant.planted_lot.as_deref().expect("the lot was made"));
    let first = &answer.candidates[0];
    assert_eq!(
        (first.kind.as_str(), &first.value),
        ("lot", &lot),
        "{answer:#?}"
    );
    assert!(first.q_value < 0.01, "{first:?}");
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn a_planted_station_window_in_the_synthetic_plant_is_ranked_first() {
    let app = TestApp::spawn().await.expect("suite starts");
    let planted = Planted {
        base_rate: 0.02,
        station_factor: Some(10.0),
        ..Default::default()
    };
    let (failed, _, plant) = capture_plant(&app, 12, 3_000, planted).await;
    let (from, until) = plant.planted_window.expect("the window was made");
    let answer = analyze(&app, failed).await;
    assert_eq!(
        answer.verdict,
        pb::CauseVerdict::Ranked as i32,
        "{answer:?}"
    );
    let first = &answer.candidates[0];
    assert!(
        ["hour", "shift"].contains(&first.kind.as_str())
            && first.value.starts_with("urn:epc:id:sgln:4012345.00003.2 "),
        "line 2 at a time: {answer:#?}"
    );
    let seen = first.first_seen.as_ref().map_or(0, |t| t.seconds);
    assert!(
        seen >= from - 3600 && seen <= until,
        "{seen} in {from}..{until}"
    );
    assert!(first.q_value < 0.01, "{first:?}");
    app.stop().await.expect("clean stop");
}

/// With no planted cause, an analysis at q ≤ 0.05 finds something in about 5 % of plants
/// at most (Benjamini–Hochberg bounds the chance of any false discovery under no effect);
/// here 20 plants, each against its own good units.
#[tokio::test]
async fn without_a_planted_cause_nothing_is_significant_in_most_plants() {
    let app = TestApp::spawn().await.expect("suite starts");
    let mut ranked = Vec::new();
    for seed in 20..40 {
        let planted = Planted {
            base_rate: 0.03,
            ..Default::default()
        };
        let (failed, good, _) = capture_plant(&app, seed, 1_200, planted).await;
        let answer = app
            .genealogy
            .clone()
            .analyze_common_cause(pb::AnalyzeCommonCauseRequest {
                failed,
                baseline: good,
                ..Default::default()
            })
            .await
            .expect("analysis")
            .into_inner();
        if answer.verdict == pb::CauseVerdict::Ranked as i32 {
            ranked.push((seed, answer.candidates[0].clone()));
        }
    }
    eprintln!("false discoveries in {} of 20 plants", ranked.len());
    assert!(
        ranked.len() <= 2,
        "false discoveries in {} of 20 plants: {ranked:#?}",
        ranked.len()
    );
    app.stop().await.expect("clean stop");
}
