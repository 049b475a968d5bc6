//! Capture: events stored durably, duplicates stored once, queries, and Subscribe resuming
//! from a cursor without gaps or duplicates.

use std::time::Duration;

use futures::StreamExt as _;
use tonic::Code;
use tonic_types::StatusExt as _;
use tracery_e2e::TestApp;
use tracery_proto::v1::{self as pb, epcis_event::Body};

/// An ObjectEvent OBSERVE of `epcs` at `biz_step`, `minute` minutes into 2026-11-26.
pub(crate) fn observe(
    event_id: &str,
    epcs: &[&str],
    biz_step: &str,
    minute: i64,
) -> pb::EpcisEvent {
    object_event(event_id, pb::Action::Observe, epcs, biz_step, minute)
}

/// An ObjectEvent with `action` on `epcs` at `biz_step`, `minute` minutes into 2026-11-26.
pub(crate) fn object_event(
    event_id: &str,
    action: pb::Action,
    epcs: &[&str],
    biz_step: &str,
    minute: i64,
) -> pb::EpcisEvent {
    pb::EpcisEvent {
        event_id: event_id.to_owned(),
        event_time: Some(prost_types::Timestamp {
            seconds: 1_795_651_200 + minute * 60,
            nanos: 0,
        }),
        event_time_zone_offset: "+01:00".to_owned(),
        biz_step: biz_step.to_owned(),
        read_point: Some(pb::Location {
            id: "urn:epc:id:sgln:4012345.00001.0".to_owned(),
            extensions: None,
        }),
        body: Some(Body::ObjectEvent(pb::ObjectEvent {
            action: action.into(),
            epcs: epcs.iter().map(|e| (*e).to_owned()).collect(),
            quantities: Vec::new(),
            ilmd: None,
        })),
        ..Default::default()
    }
}

const UNIT_1: &str = "urn:epc:id:sgtin:4012345.011111.1001";
const UNIT_2: &str = "urn:epc:id:sgtin:4012345.011111.1002";

#[tokio::test]
async fn events_are_stored_once_and_read_back() {
    let mut app = TestApp::spawn().await.expect("suite starts");
    let batch = vec![
        observe(
            "urn:uuid:00000000-0000-4000-8000-000000000001",
            &[UNIT_1],
            "receiving",
            0,
        ),
        observe(
            "urn:uuid:00000000-0000-4000-8000-000000000002",
            &[UNIT_2],
            "shipping",
            5,
        ),
    ];
    let results = app.capture_events(batch.clone()).await;
    assert_eq!(results.len(), 2);
    assert!(
        results
            .iter()
            .all(|r| r.outcome == pb::CaptureOutcome::Accepted as i32)
    );
    assert!(
        results[0].sequence < results[1].sequence,
        "sequences increase"
    );

    let again = app.capture_events(batch.clone()).await;
    for (first, second) in results.iter().zip(&again) {
        assert_eq!(second.outcome, pb::CaptureOutcome::Duplicate as i32);
        assert_eq!(
            second.sequence, first.sequence,
            "a duplicate keeps its first sequence"
        );
    }

    let stored = app
        .capture
        .get_event(pb::GetEventRequest {
            event_id: batch[1].event_id.clone(),
        })
        .await
        .expect("found")
        .into_inner()
        .event
        .expect("event");
    let event = stored.event.expect("event");
    assert!(event.record_time.is_some(), "recordTime is set at capture");
    assert_eq!(event.biz_step, "shipping");
    assert_eq!(event.event_time, batch[1].event_time);
    let Some(Body::ObjectEvent(object)) = event.body else {
        panic!("object event")
    };
    assert_eq!(object.epcs, [UNIT_2]);

    let shipped = app
        .capture
        .query_events(pb::QueryEventsRequest {
            filter: Some(pb::EventFilter {
                biz_steps: vec!["shipping".to_owned()],
                ..Default::default()
            }),
            page: None,
        })
        .await
        .expect("queries")
        .into_inner()
        .events;
    assert_eq!(shipped.len(), 1);
    assert_eq!(shipped[0].sequence, results[1].sequence);
    app.stop().await.expect("clean stop");
}

fn outcome(result: &pb::EventResult) -> (i32, Vec<(String, String)>) {
    (
        result.outcome,
        result
            .violations
            .iter()
            .map(|v| (v.field.clone(), v.code.clone()))
            .collect(),
    )
}

/// A batch with one good event and four bad ones, each bad in its own way.
fn mixed_batch() -> Vec<pb::EpcisEvent> {
    let good = observe(
        "urn:uuid:00000000-0000-4000-8000-00000000000c",
        &[UNIT_1],
        "receiving",
        0,
    );
    let mut no_time = observe(
        "urn:uuid:00000000-0000-4000-8000-00000000000a",
        &[UNIT_1],
        "",
        0,
    );
    no_time.event_time = None;
    let mut bad_offset = observe(
        "urn:uuid:00000000-0000-4000-8000-00000000000b",
        &[UNIT_1],
        "",
        0,
    );
    bad_offset.event_time_zone_offset = "CET".to_owned();
    let bad_check_digit = observe(
        "urn:uuid:00000000-0000-4000-8000-00000000000d",
        &["https://id.gs1.org/01/04012345111119/21/1"],
        "receiving",
        0,
    );
    let typo = observe(
        "urn:uuid:00000000-0000-4000-8000-00000000000e",
        &[UNIT_2],
        "shippping",
        0,
    );
    vec![good, no_time, bad_offset, bad_check_digit, typo]
}

#[tokio::test]
async fn invalid_events_are_quarantined_with_every_reason() {
    let mut app = TestApp::spawn().await.expect("suite starts");
    let results = app.capture_events(mixed_batch()).await;
    let quarantined = pb::CaptureOutcome::Quarantined as i32;
    let pair = |f: &str, c: &str| vec![(f.to_owned(), c.to_owned())];
    assert_eq!(
        results.iter().map(outcome).collect::<Vec<_>>(),
        [
            // Stored, with a warning: nothing ever commissioned this unit.
            (
                pb::CaptureOutcome::Accepted as i32,
                pair("epcList/0", "UNKNOWN_IDENTIFIER")
            ),
            (quarantined, pair("event_time", "MALFORMED_EVENT")),
            (
                quarantined,
                pair("event_time_zone_offset", "MALFORMED_EVENT")
            ),
            (quarantined, pair("epcList/0", "BAD_CHECK_DIGIT")),
            (quarantined, pair("bizStep", "UNKNOWN_BIZ_STEP")),
        ]
    );
    assert!(
        results[3].violations[0].description.contains("check digit"),
        "{:?}",
        results[3].violations
    );
    assert!(
        results[1..]
            .iter()
            .all(|r| !r.quarantine_id.is_empty() && r.sequence == 0)
    );

    let stored = app
        .capture
        .query_events(pb::QueryEventsRequest::default())
        .await
        .expect("queries")
        .into_inner()
        .events;
    assert_eq!(stored.len(), 1, "only the good event is stored");

    let entries = app
        .capture
        .list_quarantine(pb::ListQuarantineRequest::default())
        .await
        .expect("lists")
        .into_inner()
        .entries;
    let ids: Vec<&str> = entries.iter().map(|e| e.id.as_str()).collect();
    let expected: Vec<&str> = results[1..]
        .iter()
        .map(|r| r.quarantine_id.as_str())
        .collect();
    assert_eq!(ids, expected, "every bad event is kept, oldest first");
    assert!(
        entries[0].payload.is_empty() && !entries[0].payload_protobuf.is_empty(),
        "unreadable: kept as received"
    );
    assert!(
        entries[4 - 1].payload.contains("shippping"),
        "readable: kept as JSON-LD"
    );
    assert!(
        entries
            .iter()
            .all(|e| e.channel == "grpc" && e.receive_time.is_some())
    );
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn quarantined_events_are_resubmitted_or_discarded_with_a_reason() {
    let mut app = TestApp::spawn().await.expect("suite starts");
    let batch = mixed_batch();
    let results = app.capture_events(batch.clone()).await;
    let (no_time_id, typo_id, check_digit_id) = (
        results[1].quarantine_id.clone(),
        results[4].quarantine_id.clone(),
        results[3].quarantine_id.clone(),
    );
    let resubmit = |id: &str, corrected: Option<pb::EpcisEvent>| pb::ResubmitQuarantinedRequest {
        id: id.to_owned(),
        corrected,
    };

    let again = app
        .capture
        .resubmit_quarantined(resubmit(&typo_id, None))
        .await
        .expect("resubmits")
        .into_inner()
        .result
        .expect("result");
    assert_eq!(
        (again.outcome, again.quarantine_id.as_str()),
        (pb::CaptureOutcome::Quarantined as i32, typo_id.as_str()),
        "unchanged, it stays in quarantine"
    );

    let mut fixed = batch[4].clone();
    fixed.biz_step = "shipping".to_owned();
    let accepted = app
        .capture
        .resubmit_quarantined(resubmit(&typo_id, Some(fixed)))
        .await
        .expect("resubmits")
        .into_inner()
        .result
        .expect("result");
    assert_eq!(accepted.outcome, pb::CaptureOutcome::Accepted as i32);
    assert!(accepted.sequence > 0);
    let stored = app
        .capture
        .get_event(pb::GetEventRequest {
            event_id: accepted.event_id.clone(),
        })
        .await
        .expect("stored")
        .into_inner();
    assert_eq!(
        stored
            .event
            .and_then(|e| e.event)
            .map(|e| e.biz_step)
            .as_deref(),
        Some("shipping")
    );
    let status = app
        .capture
        .resubmit_quarantined(resubmit(&typo_id, None))
        .await
        .expect_err("closed");
    assert_eq!(status.code(), Code::FailedPrecondition);

    // The unreadable one was kept as protobuf; a correction makes it whole.
    let mut fixed = batch[1].clone();
    fixed.event_time = batch[0].event_time;
    let accepted = app
        .capture
        .resubmit_quarantined(resubmit(&no_time_id, Some(fixed)))
        .await
        .expect("resubmits")
        .into_inner()
        .result
        .expect("result");
    assert_eq!(accepted.outcome, pb::CaptureOutcome::Accepted as i32);

    let discard = |id: &str, reason: &str| pb::DiscardQuarantinedRequest {
        id: id.to_owned(),
        reason: reason.to_owned(),
    };
    let status = app
        .capture
        .discard_quarantined(discard(&check_digit_id, "  "))
        .await
        .expect_err("no reason");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        status
            .get_details_bad_request()
            .expect("BadRequest")
            .field_violations[0]
            .field,
        "reason"
    );
    app.capture
        .discard_quarantined(discard(&check_digit_id, "label misprint, unit scrapped"))
        .await
        .expect("discards");
    let status = app
        .capture
        .discard_quarantined(discard(&check_digit_id, "again"))
        .await
        .expect_err("closed");
    assert_eq!(status.code(), Code::FailedPrecondition);
    let status = app
        .capture
        .discard_quarantined(discard("no-such-id", "x"))
        .await
        .expect_err("unknown");
    assert_eq!(status.code(), Code::NotFound);

    let left: Vec<String> = app
        .capture
        .list_quarantine(pb::ListQuarantineRequest::default())
        .await
        .expect("lists")
        .into_inner()
        .entries
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(
        left,
        [results[2].quarantine_id.clone()],
        "only the untouched entry is still open"
    );
    app.stop().await.expect("clean stop");
}

async fn next_sequence(stream: &mut tonic::Streaming<pb::SubscribeResponse>) -> i64 {
    tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("an event within 10 s")
        .expect("stream open")
        .expect("ok")
        .event
        .expect("event")
        .sequence
}

#[tokio::test]
async fn subscribe_resumes_from_a_cursor_without_gaps_or_duplicates() {
    let mut app = TestApp::spawn().await.expect("suite starts");
    let ids: Vec<String> = (1..=3)
        .map(|i| format!("urn:uuid:00000000-0000-4000-8000-1000000000{i:02}"))
        .collect();
    let events = ids
        .iter()
        .map(|id| observe(id, &[UNIT_1], "inspecting", 1))
        .collect();
    let sequences: Vec<i64> = app
        .capture_events(events)
        .await
        .iter()
        .map(|r| r.sequence)
        .collect();

    let mut first = app
        .capture
        .subscribe(pb::SubscribeRequest::default())
        .await
        .expect("subscribes")
        .into_inner();
    assert_eq!(next_sequence(&mut first).await, sequences[0]);
    assert_eq!(next_sequence(&mut first).await, sequences[1]);
    drop(first); // the consumer disconnects after two events

    let mut resumed = app
        .capture
        .subscribe(pb::SubscribeRequest {
            after_sequence: sequences[1],
            filter: None,
        })
        .await
        .expect("subscribes")
        .into_inner();
    assert_eq!(next_sequence(&mut resumed).await, sequences[2]);
    let live = app
        .capture_events(vec![observe(
            "urn:uuid:00000000-0000-4000-8000-200000000001",
            &[UNIT_2],
            "packing",
            2,
        )])
        .await[0]
        .sequence;
    assert_eq!(
        next_sequence(&mut resumed).await,
        live,
        "live events follow history"
    );
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn capture_stream_acknowledges_each_batch_once_durable() {
    let mut app = TestApp::spawn().await.expect("suite starts");
    let (sender, receiver) = tokio::sync::mpsc::channel(4);
    let mut acks = app
        .capture
        .capture_stream(tokio_stream::wrappers::ReceiverStream::new(receiver))
        .await
        .expect("stream opens")
        .into_inner();
    let mut last_cursor = 0;
    for batch in 0..3 {
        let events = (0..10)
            .map(|i| {
                let id = format!("urn:uuid:00000000-0000-4000-8000-0000000{batch}00{i}");
                observe(&id, &[UNIT_1], "receiving", i64::from(batch * 10 + i))
            })
            .collect();
        sender
            .send(pb::CaptureStreamRequest {
                batch_id: format!("line-7-{batch}"),
                events,
            })
            .await
            .expect("sends");
        let ack = acks
            .next()
            .await
            .expect("an acknowledgement")
            .expect("not an error");
        assert_eq!(ack.batch_id, format!("line-7-{batch}"));
        assert_eq!(ack.results.len(), 10);
        assert!(
            ack.results
                .iter()
                .all(|r| r.outcome == pb::CaptureOutcome::Accepted as i32)
        );
        assert!(ack.cursor > last_cursor, "the cursor moves forward");
        assert_eq!(
            ack.cursor,
            ack.results.iter().map(|r| r.sequence).max().unwrap_or(0)
        );
        last_cursor = ack.cursor;
        // Acknowledged means durable: a reader sees it right away.
        let stored = app
            .capture
            .get_event(pb::GetEventRequest {
                event_id: ack.results[9].event_id.clone(),
            })
            .await
            .expect("acknowledged event is stored");
        assert!(stored.into_inner().event.is_some());
    }
    drop(sender);
    assert!(
        acks.next().await.is_none(),
        "the server ends the stream when the client does"
    );
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn two_writers_never_let_a_subscriber_skip_or_repeat_an_event() {
    const WRITERS: usize = 4;
    const BATCHES: usize = 15;
    const PER_BATCH: usize = 20;
    let mut app = TestApp::spawn().await.expect("suite starts");
    let replica = app.spawn_replica().await.expect("second capture instance");
    let mut subscription = app
        .capture
        .subscribe(pb::SubscribeRequest {
            after_sequence: 0,
            filter: None,
        })
        .await
        .expect("subscribes")
        .into_inner();

    let mut writers = Vec::new();
    for writer in 0..WRITERS {
        // Writers alternate between the two instances, each over its own connection.
        let addr = if writer % 2 == 0 {
            app.grpc_addr
        } else {
            replica.grpc_addr
        };
        writers.push(tokio::spawn(async move {
            let mut client =
                pb::capture_service_client::CaptureServiceClient::connect(format!("http://{addr}"))
                    .await
                    .expect("connects");
            for batch in 0..BATCHES {
                let events = (0..PER_BATCH)
                    .map(|i| {
                        let id =
                            format!("urn:uuid:00000000-0000-4000-8{writer:03}-{batch:06}{i:06}");
                        observe(&id, &[UNIT_1], "receiving", 0)
                    })
                    .collect();
                client
                    .capture(pb::CaptureRequest { events })
                    .await
                    .expect("captures");
            }
        }));
    }
    for writer in writers {
        writer.await.expect("writer finished");
    }
    let total = WRITERS * BATCHES * PER_BATCH;
    let mut seen = std::collections::HashSet::new();
    let mut last = 0;
    while seen.len() < total {
        let message = tokio::time::timeout(Duration::from_secs(10), subscription.next())
            .await
            .expect("every event arrives within 10 s (a missing one was skipped)")
            .expect("stream open")
            .expect("not an error");
        let stored = message.event.expect("event");
        assert!(stored.sequence > last, "sequences arrive in order");
        last = stored.sequence;
        let id = stored.event.expect("event").event_id;
        assert!(seen.insert(id.clone()), "{id} delivered twice");
    }
    assert_eq!(seen.len(), total, "every event delivered exactly once");
    replica.stop().await.expect("replica stops");
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn queries_match_identifiers_in_any_spelling() {
    let mut app = TestApp::spawn().await.expect("suite starts");
    let serial_1 = "urn:epc:id:sgtin:4012345.011111.1001";
    let serial_2_as_link = "https://id.gs1.org/01/04012345111118/21/1002";
    let pallet = "urn:epc:id:sscc:4012345.0000000001";
    let lot = "urn:epc:class:lgtin:4012345.011111.L1";
    let id = |n: u32| format!("urn:uuid:00000000-0000-4000-8000-0000000002{n:02}");
    let mut by_lot = observe(&id(3), &[], "receiving", 2);
    if let Some(Body::ObjectEvent(object)) = by_lot.body.as_mut() {
        object.quantities = vec![pb::QuantityElement {
            epc_class: lot.to_owned(),
            quantity: Some(12.0),
            uom: "KGM".to_owned(),
        }];
    }
    by_lot.biz_transactions = vec![pb::BizTransaction {
        r#type: "po".to_owned(),
        id: "urn:epcglobal:cbv:bt:4012345000009:PO-1".to_owned(),
    }];
    let packing = pb::EpcisEvent {
        body: Some(Body::AggregationEvent(pb::AggregationEvent {
            action: pb::Action::Add.into(),
            parent_id: pallet.to_owned(),
            child_epcs: vec![serial_1.to_owned()],
            ..Default::default()
        })),
        ..observe(&id(4), &[], "packing", 3)
    };
    let events = vec![
        observe(&id(1), &[serial_1], "receiving", 0),
        observe(&id(2), &[serial_2_as_link], "receiving", 1),
        by_lot,
        packing,
    ];
    app.capture
        .capture(pb::CaptureRequest { events })
        .await
        .expect("captures");

    let query = |filter: pb::EventFilter| {
        let mut capture = app.capture.clone();
        async move {
            capture
                .query_events(pb::QueryEventsRequest {
                    filter: Some(filter),
                    page: None,
                })
                .await
                .expect("queries")
                .into_inner()
                .events
                .into_iter()
                .filter_map(|e| e.event)
                .map(|e| e.event_id[e.event_id.len() - 2..].to_owned())
                .collect::<Vec<_>>()
        }
    };
    let strings = |values: &[&str]| values.iter().map(|v| (*v).to_owned()).collect::<Vec<_>>();
    let serial_1_as_link = "https://id.gs1.org/01/04012345111118/21/1001";
    let epcs = |values: &[&str]| pb::EventFilter {
        match_epcs: strings(values),
        ..Default::default()
    };
    let classes = |values: &[&str]| pb::EventFilter {
        match_epc_classes: strings(values),
        ..Default::default()
    };
    let cases: Vec<(&str, pb::EventFilter, &[&str])> = vec![
        (
            "a link finds the URN",
            epcs(&[serial_1_as_link]),
            &["01", "04"],
        ),
        (
            "a URN finds the link",
            epcs(&["urn:epc:id:sgtin:4012345.011111.1002"]),
            &["02"],
        ),
        (
            "every serial of the GTIN",
            epcs(&["urn:epc:idpat:sgtin:4012345.011111.*"]),
            &["01", "02", "04"],
        ),
        ("a parent is not an epc", epcs(&[pallet]), &[]),
        (
            "a parent is any epc",
            pb::EventFilter {
                match_any_epcs: strings(&[pallet]),
                ..Default::default()
            },
            &["04"],
        ),
        (
            "every lot of the GTIN",
            classes(&["urn:epc:idpat:sgtin:4012345.011111.*"]),
            &["03"],
        ),
        (
            "a lot as a Digital Link",
            classes(&["https://id.gs1.org/01/04012345111118/10/L1"]),
            &["03"],
        ),
        (
            "a business transaction",
            pb::EventFilter {
                biz_transactions: strings(&["urn:epcglobal:cbv:bt:4012345000009:PO-1"]),
                ..Default::default()
            },
            &["03"],
        ),
        (
            "filters combine",
            pb::EventFilter {
                biz_steps: strings(&["packing"]),
                ..epcs(&[serial_1])
            },
            &["04"],
        ),
    ];
    for (why, filter, expected) in cases {
        assert_eq!(query(filter).await, expected, "{why}");
    }
    app.stop().await.expect("clean stop");
}

fn aggregation(
    id: &str,
    action: pb::Action,
    parent: &str,
    children: &[&str],
    minute: i64,
) -> pb::EpcisEvent {
    pb::EpcisEvent {
        body: Some(Body::AggregationEvent(pb::AggregationEvent {
            action: action.into(),
            parent_id: parent.to_owned(),
            child_epcs: children.iter().map(|c| (*c).to_owned()).collect(),
            ..Default::default()
        })),
        ..observe(id, &[], "packing", minute)
    }
}

/// Each result's outcome and reason codes, without the never-commissioned warning that
/// uncommissioned test units always carry.
async fn outcomes(app: &TestApp, events: Vec<pb::EpcisEvent>) -> Vec<(i32, Vec<String>)> {
    app.capture_events(events)
        .await
        .into_iter()
        .map(|r| {
            let codes = r.violations.into_iter().map(|v| v.code);
            (
                r.outcome,
                codes.filter(|c| c != "UNKNOWN_IDENTIFIER").collect(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_packed_child_must_be_unpacked_before_it_moves() {
    let app = TestApp::spawn().await.expect("suite starts");
    let case_a = "urn:epc:id:sscc:4012345.0000000011";
    let case_b = "urn:epc:id:sscc:4012345.0000000022";
    let id = |n: u32| format!("urn:uuid:00000000-0000-4000-8000-0000000003{n:02}");
    let accepted = (pb::CaptureOutcome::Accepted as i32, Vec::<String>::new());
    let packed = (
        pb::CaptureOutcome::Quarantined as i32,
        vec!["ALREADY_PACKED".to_owned()],
    );
    let pack = |n, action, parent, children: &[&str], minute| {
        aggregation(&id(n), action, parent, children, minute)
    };

    // Judged in batch order: packed into A, then into B without unpacking.
    let batch = vec![
        pack(1, pb::Action::Add, case_a, &[UNIT_1, UNIT_2], 0),
        pack(2, pb::Action::Add, case_b, &[UNIT_1], 1),
    ];
    assert_eq!(
        outcomes(&app, batch).await,
        [accepted.clone(), packed.clone()]
    );
    // Against the store, and under another spelling of the same unit.
    let unit_1_as_link = "https://id.gs1.org/01/04012345111118/21/1001";
    let moved = vec![pack(3, pb::Action::Add, case_b, &[unit_1_as_link], 2)];
    assert_eq!(outcomes(&app, moved).await, std::slice::from_ref(&packed));
    // Re-packing into the same case is a confirmation, not a move.
    let confirmed = vec![pack(4, pb::Action::Observe, case_a, &[UNIT_1], 3)];
    assert_eq!(
        outcomes(&app, confirmed).await,
        std::slice::from_ref(&accepted)
    );
    // Emptying case A frees both units.
    let emptied = vec![pack(5, pb::Action::Delete, case_a, &[], 4)];
    assert_eq!(
        outcomes(&app, emptied).await,
        std::slice::from_ref(&accepted)
    );
    let repacked = pack(6, pb::Action::Add, case_b, &[UNIT_1, UNIT_2], 5);
    assert_eq!(
        outcomes(&app, vec![repacked.clone()]).await,
        std::slice::from_ref(&accepted)
    );
    // A packing declared erroneous never happened: both units are free again.
    let declared = outcomes(&app, vec![declared_erroneous(repacked)]).await;
    assert_eq!(declared, std::slice::from_ref(&accepted));
    let into_a = vec![pack(7, pb::Action::Add, case_a, &[UNIT_1], 6)];
    assert_eq!(
        outcomes(&app, into_a).await,
        std::slice::from_ref(&accepted)
    );
    // Nor did an emptying declared erroneous: unit 2 is back in case A since event 1.
    let emptying = pack(5, pb::Action::Delete, case_a, &[], 4);
    let declared = outcomes(&app, vec![declared_erroneous(emptying)]).await;
    assert_eq!(declared, std::slice::from_ref(&accepted));
    let into_b = vec![pack(8, pb::Action::Add, case_b, &[UNIT_2], 7)];
    assert_eq!(outcomes(&app, into_b).await, [packed]);
    app.stop().await.expect("clean stop");
}

/// `event` again, declared erroneous.
fn declared_erroneous(mut event: pb::EpcisEvent) -> pb::EpcisEvent {
    event.error_declaration = Some(pb::ErrorDeclaration {
        declaration_time: Some(prost_types::Timestamp {
            seconds: 1_795_651_200 + 3_600,
            nanos: 0,
        }),
        reason: "incorrect_data".into(),
        corrective_event_ids: Vec::new(),
        extensions: None,
    });
    event
}

/// The identity state of `epc`, as identity reports it.
async fn identity_state(app: &TestApp, epc: &str) -> i32 {
    app.identifier_statuses(vec![epc.to_owned()])
        .await
        .first()
        .map_or(0, |s| s.state)
}

/// Waits until identity, which follows capture, reports `state` for `epc`.
async fn await_identity_state(app: &TestApp, epc: &str, state: pb::IdentifierState) {
    for _ in 0..100 {
        if identity_state(app, epc).await == state as i32 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("identity never reported {state:?} for {epc}");
}

#[tokio::test]
async fn an_error_declaration_is_kept_and_undoes_the_declared_event() {
    let app = TestApp::spawn().await.expect("suite starts");
    let unit = "urn:epc:id:sgtin:4012345.011111.2001";
    let wrong = "urn:uuid:00000000-0000-4000-8000-300000000001";
    let corrective = "urn:uuid:00000000-0000-4000-8000-300000000002";
    let commissioning = object_event(wrong, pb::Action::Add, &[unit], "commissioning", 1);
    let accepted = pb::CaptureOutcome::Accepted as i32;
    assert_eq!(
        outcomes(&app, vec![commissioning.clone()]).await,
        [(accepted, vec![])]
    );
    await_identity_state(&app, unit, pb::IdentifierState::Commissioned).await;

    // The declaration repeats the erroneous event, with the same eventID.
    let mut declaration = commissioning;
    declaration.error_declaration = Some(pb::ErrorDeclaration {
        declaration_time: Some(prost_types::Timestamp {
            seconds: 1_795_651_200 + 600,
            nanos: 0,
        }),
        reason: "incorrect_data".into(),
        corrective_event_ids: vec![corrective.into()],
        extensions: None,
    });
    assert_eq!(
        outcomes(&app, vec![declaration.clone()]).await,
        [(accepted, vec![])],
        "kept next to the event it declares erroneous, not taken for a duplicate"
    );
    assert_eq!(
        outcomes(&app, vec![declaration]).await,
        [(pb::CaptureOutcome::Duplicate as i32, vec![])],
        "the declaration itself is stored once"
    );

    // Subscribers see the event, then the declaration, under the same eventID.
    let mut stream = app
        .capture
        .clone()
        .subscribe(pb::SubscribeRequest {
            after_sequence: 0,
            ..Default::default()
        })
        .await
        .expect("subscribes")
        .into_inner();
    let mut seen = Vec::new();
    for _ in 0..2 {
        let stored = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .expect("an event within 10 s")
            .expect("stream open")
            .expect("ok")
            .event
            .expect("event")
            .event
            .expect("body");
        seen.push((stored.event_id, stored.error_declaration.is_some()));
    }
    assert_eq!(seen, [(wrong.to_owned(), false), (wrong.to_owned(), true)]);

    // Identity undoes the commissioning, so the corrective event may commission the unit.
    await_identity_state(&app, unit, pb::IdentifierState::Unknown).await;
    let recommission = object_event(corrective, pb::Action::Add, &[unit], "commissioning", 11);
    assert_eq!(
        outcomes(&app, vec![recommission]).await,
        [(accepted, vec![])]
    );
    app.stop().await.expect("clean stop");
}
