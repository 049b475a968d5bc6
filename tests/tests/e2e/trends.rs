//! The trend rollup over the real suite (capture → Subscribe → genealogy → GetTrends):
//! hourly events and first-pass yield per station, dwell per stage, counted once however
//! many replicas follow the stream.

use tonic::Code;
use tracery_e2e::TestApp;
use tracery_proto::v1::{self as pb, epcis_event::Body};

const LINE: &str = "urn:epc:id:sgln:4012345.00001.1";
const PACKING: &str = "urn:epc:id:sgln:4012345.00002.1";
const DOCK: &str = "urn:epc:id:sgln:4012345.00003.1";
const CASE: &str = "urn:epc:id:sscc:4012345.0000000001";
/// 2026-11-02T08:00:00Z.
const EIGHT: i64 = 1_793_606_400;

fn unit(n: u32) -> String {
    format!("urn:epc:id:sgtin:4012345.011111.{n}")
}

fn units() -> Vec<String> {
    (1..=4).map(unit).collect()
}

fn event(minutes: i64, step: &str, disposition: &str, point: &str, body: Body) -> pb::EpcisEvent {
    pb::EpcisEvent {
        event_time: Some(prost_types::Timestamp {
            seconds: EIGHT + minutes * 60,
            nanos: 0,
        }),
        event_time_zone_offset: "+00:00".into(),
        biz_step: step.into(),
        disposition: disposition.into(),
        read_point: Some(pb::Location {
            id: point.into(),
            extensions: None,
        }),
        body: Some(body),
        ..Default::default()
    }
}

fn object(action: pb::Action, epcs: Vec<String>) -> Body {
    Body::ObjectEvent(pb::ObjectEvent {
        action: action.into(),
        epcs,
        ..Default::default()
    })
}

/// Four units made and inspected on the line in the 08:00 hour (one fails, and passes when
/// inspected again), packed at 09:05 and their case shipped at 09:35.
fn shift() -> Vec<pb::EpcisEvent> {
    let observe = |epcs| object(pb::Action::Observe, epcs);
    vec![
        event(
            0,
            "commissioning",
            "active",
            LINE,
            object(pb::Action::Add, units()),
        ),
        event(
            10,
            "inspecting",
            "non_conformant",
            LINE,
            observe(vec![unit(1)]),
        ),
        event(
            11,
            "inspecting",
            "conformant",
            LINE,
            observe(units()[1..].to_vec()),
        ),
        event(40, "inspecting", "conformant", LINE, observe(vec![unit(1)])),
        event(
            65,
            "packing",
            "in_progress",
            PACKING,
            Body::AggregationEvent(pb::AggregationEvent {
                action: pb::Action::Add.into(),
                parent_id: CASE.into(),
                child_epcs: units(),
                child_quantities: Vec::new(),
            }),
        ),
        event(
            95,
            "shipping",
            "in_transit",
            DOCK,
            observe(vec![CASE.into()]),
        ),
    ]
}

async fn capture(app: &TestApp, events: Vec<pb::EpcisEvent>) -> i64 {
    let results = app.capture_events(events).await;
    assert!(
        results
            .iter()
            .all(|r| r.outcome != pb::CaptureOutcome::Quarantined as i32),
        "{results:?}"
    );
    results.iter().map(|r| r.sequence).max().unwrap_or(0)
}

fn at(seconds: i64) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp { seconds, nanos: 0 })
}

async fn trends(
    app: &TestApp,
    from: i64,
    until: i64,
) -> Result<pb::GetTrendsResponse, tonic::Status> {
    Ok(app
        .genealogy
        .clone()
        .get_trends(pb::GetTrendsRequest {
            from: at(from),
            until: at(until),
        })
        .await?
        .into_inner())
}

/// `(hour offset from 08:00 in hours, station, events, inspected, passed first time)`.
fn hours(answer: &pb::GetTrendsResponse) -> Vec<(i64, &str, i64, i64, i64)> {
    let mut rows: Vec<_> = answer
        .hours
        .iter()
        .map(|h| {
            let hour = (h.hour.as_ref().map_or(0, |t| t.seconds) - EIGHT) / 3600;
            (
                hour,
                h.station.as_str(),
                h.events,
                h.inspected,
                h.passed_first_time,
            )
        })
        .collect();
    rows.sort();
    rows
}

/// `(hour offset, stage, bucket, visits, total seconds)`.
fn dwell(answer: &pb::GetTrendsResponse) -> Vec<(i64, &str, i32, i64, i64)> {
    let mut rows: Vec<_> = answer
        .dwell
        .iter()
        .map(|d| {
            let hour = (d.hour.as_ref().map_or(0, |t| t.seconds) - EIGHT) / 3600;
            (hour, d.stage.as_str(), d.bucket, d.visits, d.total_seconds)
        })
        .collect();
    rows.sort();
    rows
}

#[tokio::test]
async fn hours_count_events_and_first_inspections_per_station() {
    let app = TestApp::spawn().await.expect("suite starts");
    let last = capture(&app, shift()).await;
    app.await_genealogy(last).await;
    let answer = trends(&app, EIGHT, EIGHT + 2 * 3600).await.expect("trends");
    assert_eq!(
        hours(&answer),
        vec![
            (0, LINE, 4, 4, 3),
            (1, PACKING, 1, 0, 0),
            (1, DOCK, 1, 0, 0),
        ],
        "a re-inspection is not a first pass: {answer:?}"
    );
    let later = trends(&app, EIGHT + 3600, EIGHT + 2 * 3600)
        .await
        .expect("trends");
    assert!(
        hours(&later).iter().all(|(hour, ..)| *hour == 1),
        "only the hours asked for: {later:?}"
    );
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn dwell_is_counted_per_stage_when_identifiers_move_on() {
    let app = TestApp::spawn().await.expect("suite starts");
    let last = capture(&app, shift()).await;
    app.await_genealogy(last).await;
    let answer = trends(&app, EIGHT, EIGHT + 2 * 3600).await.expect("trends");
    assert_eq!(
        answer.dwell_bounds_seconds,
        vec![60, 300, 900, 3_600, 14_400, 86_400]
    );
    assert_eq!(
        dwell(&answer),
        vec![
            // Four units from 08:00 on the line until packed at 09:05: 65 minutes each.
            (1, LINE, 4, 4, 4 * 3_900),
            // The case, packed at 09:05 and shipped at 09:35: 30 minutes at packing.
            (1, PACKING, 3, 1, 1_800),
        ],
        "{answer:?}"
    );
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn two_replicas_following_the_stream_count_each_event_once() {
    let app = TestApp::spawn().await.expect("suite starts");
    let replica = app.spawn_replica().await.expect("replica starts");
    let events = shift();
    let mut last = 0;
    for event in events {
        last = capture(&app, vec![event]).await;
    }
    app.await_genealogy(last).await;
    replica.await_genealogy(last).await;
    for suite in [&app, &replica] {
        let answer = trends(suite, EIGHT, EIGHT + 2 * 3600)
            .await
            .expect("trends");
        let line = hours(&answer)
            .into_iter()
            .find(|(_, station, ..)| *station == LINE)
            .expect("the line's hour");
        assert_eq!(line, (0, LINE, 4, 4, 3), "{answer:?}");
    }
    replica.stop().await.expect("clean stop");
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn a_period_that_ends_before_it_starts_or_is_too_long_is_refused_by_name() {
    let app = TestApp::spawn().await.expect("suite starts");
    let backwards = trends(&app, EIGHT, EIGHT - 3600)
        .await
        .expect_err("refused");
    assert_eq!(backwards.code(), Code::InvalidArgument);
    assert!(
        backwards.message().contains("until"),
        "{}",
        backwards.message()
    );
    let long = trends(&app, EIGHT - 100 * 86_400, EIGHT)
        .await
        .expect_err("refused");
    assert_eq!(long.code(), Code::InvalidArgument);
    assert!(long.message().contains("92 days"), "{}", long.message());
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn quarantined_events_are_counted_per_hour_and_read_point() {
    let app = TestApp::spawn().await.expect("suite starts");
    // A GTIN with a wrong check digit, as a scanner misreads it.
    let misread = |point: &str, minutes: i64| {
        let epcs = vec!["https://id.gs1.org/01/09506000134353/21/X".to_owned()];
        event(
            minutes,
            "inspecting",
            "conformant",
            point,
            object(pb::Action::Observe, epcs),
        )
    };
    let results = app
        .capture_events(vec![misread(LINE, 1), misread(LINE, 2), misread(DOCK, 3)])
        .await;
    assert!(
        results
            .iter()
            .all(|r| r.outcome == pb::CaptureOutcome::Quarantined as i32),
        "{results:?}"
    );
    let now = chrono::Utc::now().timestamp();
    let answer = app
        .capture
        .clone()
        .quarantine_hours(pb::QuarantineHoursRequest {
            from: at(now - 3600),
            until: at(now + 3600),
        })
        .await
        .expect("quarantine hours")
        .into_inner();
    let mut counts: Vec<(&str, i64)> = answer
        .hours
        .iter()
        .map(|h| (h.read_point.as_str(), h.quarantined))
        .collect();
    counts.sort();
    assert_eq!(counts, vec![(LINE, 2), (DOCK, 1)], "{answer:?}");
    let refused = app
        .capture
        .clone()
        .quarantine_hours(pb::QuarantineHoursRequest {
            from: at(now),
            until: at(now - 1),
        })
        .await
        .expect_err("refused");
    assert!(refused.message().contains("until"), "{}", refused.message());
    app.stop().await.expect("clean stop");
}
