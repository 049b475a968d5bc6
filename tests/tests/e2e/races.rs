//! Rules decided where the event is stored: requests racing for the same serial or the same
//! child, over separate connections and over gRPC and REST at once, are decided one after
//! the other — the first stored, the second quarantined naming the first.

use std::collections::HashMap;

use serde_json::{Value, json};
use tonic::transport::Channel;
use tracery_e2e::TestApp;
use tracery_proto::v1::{self as pb, capture_service_client::CaptureServiceClient};

const PAIRS: u32 = 40;

fn commissioning(event_id: &str, serial: &str) -> Value {
    json!({
        "type": "ObjectEvent", "eventID": event_id,
        "eventTime": "2026-11-26T08:00:00Z", "eventTimeZoneOffset": "+00:00",
        "action": "ADD", "bizStep": "commissioning",
        "epcList": [format!("urn:epc:id:sgtin:4012345.011111.{serial}")],
    })
}

fn packing(event_id: &str, parent: &str, child: &str) -> Value {
    json!({
        "type": "AggregationEvent", "eventID": event_id,
        "eventTime": "2026-11-26T09:00:00Z", "eventTimeZoneOffset": "+00:00",
        "action": "ADD", "bizStep": "packing",
        "parentID": format!("urn:epc:id:sscc:4012345.{parent}"),
        "childEPCs": [format!("urn:epc:id:sgtin:4012345.011111.{child}")],
    })
}

fn proto(value: Value) -> pb::EpcisEvent {
    let event = tracery_epcis::json::parse_event(value).expect("a valid event");
    tracery_epcis::proto::event_to_proto(&event)
}

/// Sends `event` over its own gRPC connection or as a REST capture document.
async fn send(app: &TestApp, over_rest: bool, event: Value) {
    if over_rest {
        let document = json!({
            "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
            "type": "EPCISDocument", "schemaVersion": "2.0", "creationDate": "2026-11-26T00:00:00Z",
            "epcisBody": {"eventList": [event]},
        });
        let answer = reqwest::Client::new()
            .post(format!("http://{}/capture", app.http_addr))
            .header("content-type", "application/ld+json")
            .body(document.to_string())
            .send()
            .await
            .expect("answer");
        assert_eq!(answer.status(), 202);
    } else {
        let channel = Channel::from_shared(format!("http://{}", app.grpc_addr))
            .expect("endpoint")
            .connect()
            .await
            .expect("a connection of its own");
        CaptureServiceClient::new(channel)
            .capture(pb::CaptureRequest {
                events: vec![proto(event)],
            })
            .await
            .expect("captured");
    }
}

/// The quarantine entries.
async fn quarantined(app: &TestApp) -> Vec<pb::QuarantinedEvent> {
    app.capture
        .clone()
        .list_quarantine(pb::ListQuarantineRequest {
            page: Some(pb::PageRequest {
                page_size: 1000,
                page_token: String::new(),
            }),
        })
        .await
        .expect("quarantine")
        .into_inner()
        .entries
}

#[tokio::test]
async fn racing_requests_are_decided_one_after_the_other() {
    let app = TestApp::spawn().await.expect("suite starts");

    // Two line PCs commission the same serial at the same moment, PAIRS times.
    let races = (0..PAIRS).map(|n| {
        let (first, second) = (
            format!("urn:uuid:00000000-0000-4000-8000-a1{n:010}"),
            format!("urn:uuid:00000000-0000-4000-8000-a2{n:010}"),
        );
        let serial = format!("R{n}");
        // gRPC against gRPC, and gRPC against REST.
        let rest = n % 2 == 1;
        let app = &app;
        async move {
            tokio::join!(
                send(app, false, commissioning(&first, &serial)),
                send(app, rest, commissioning(&second, &serial))
            );
        }
    });
    futures::future::join_all(races).await;
    let stored: Vec<String> = app
        .stored_events()
        .await
        .into_iter()
        .map(|(_, id)| id)
        .collect();
    let mut winners: HashMap<u32, &String> = HashMap::new();
    for id in &stored {
        let n: u32 = id[id.len() - 10..].parse().expect("pair number");
        assert!(
            winners.insert(n, id).is_none(),
            "serial R{n} stored as commissioned twice: {stored:?}"
        );
    }
    assert_eq!(
        winners.len(),
        PAIRS as usize,
        "one commissioning per serial"
    );
    let losers = quarantined(&app).await;
    assert_eq!(losers.len(), PAIRS as usize, "{losers:?}");
    for loser in &losers {
        let violation = &loser.violations[0];
        assert_eq!(violation.code, "ALREADY_COMMISSIONED", "{loser:?}");
        let payload: Value = serde_json::from_str(&loser.payload).expect("the event as JSON-LD");
        let event_id = payload["eventID"].as_str().expect("an eventID");
        let n: u32 = event_id[event_id.len() - 10..]
            .parse()
            .expect("pair number");
        assert!(
            violation.description.contains(winners[&n].as_str()),
            "the loser names the winner {}: {}",
            winners[&n],
            violation.description
        );
    }

    // One child packed into two cases at once.
    let races = (0..PAIRS).map(|n| {
        let app = &app;
        async move {
            tokio::join!(
                send(
                    app,
                    false,
                    packing(
                        &format!("urn:uuid:00000000-0000-4000-8000-b1{n:010}"),
                        &format!("1{n:09}"),
                        &format!("R{n}")
                    )
                ),
                send(
                    app,
                    n % 2 == 1,
                    packing(
                        &format!("urn:uuid:00000000-0000-4000-8000-b2{n:010}"),
                        &format!("2{n:09}"),
                        &format!("R{n}")
                    )
                )
            );
        }
    });
    futures::future::join_all(races).await;
    let packed = app.stored_events().await.len() - PAIRS as usize;
    assert_eq!(packed, PAIRS as usize, "each child in one case");
    let refused_packings = quarantined(&app)
        .await
        .iter()
        .filter(|e| e.violations.iter().any(|v| v.code == "ALREADY_PACKED"))
        .count();
    assert_eq!(refused_packings, PAIRS as usize);

    // An identifier used in the same batch as its decommissioning.
    let epc = "urn:epc:id:sgtin:4012345.011111.B1";
    let batch = vec![
        proto(
            json!({"type": "ObjectEvent", "eventID": "urn:uuid:00000000-0000-4000-8000-c00000000001",
            "eventTime": "2026-11-26T10:00:00Z", "eventTimeZoneOffset": "+00:00",
            "action": "ADD", "bizStep": "commissioning", "epcList": [epc]}),
        ),
        proto(
            json!({"type": "ObjectEvent", "eventID": "urn:uuid:00000000-0000-4000-8000-c00000000002",
            "eventTime": "2026-11-26T10:01:00Z", "eventTimeZoneOffset": "+00:00",
            "action": "DELETE", "bizStep": "decommissioning", "epcList": [epc]}),
        ),
        proto(
            json!({"type": "ObjectEvent", "eventID": "urn:uuid:00000000-0000-4000-8000-c00000000003",
            "eventTime": "2026-11-26T10:02:00Z", "eventTimeZoneOffset": "+00:00",
            "action": "OBSERVE", "bizStep": "shipping", "epcList": [epc]}),
        ),
    ];
    let results = app.capture_events(batch).await;
    let outcomes: Vec<i32> = results.iter().map(|r| r.outcome).collect();
    assert_eq!(
        outcomes,
        [
            pb::CaptureOutcome::Accepted as i32,
            pb::CaptureOutcome::Accepted as i32,
            pb::CaptureOutcome::Quarantined as i32
        ],
        "{results:?}"
    );
    assert_eq!(results[2].violations[0].code, "RETIRED_IDENTIFIER");
    app.stop().await.expect("clean stop");
}

/// The lifecycle table the rules read is derived: the migration that introduces it fills
/// it from the events stored before, an error declaration included.
#[tokio::test]
async fn the_lifecycle_table_is_rebuilt_from_stored_events() {
    use sea_orm::{ConnectionTrait as _, Database, Statement};
    let app = TestApp::spawn().await.expect("suite starts");
    let events = vec![
        proto(commissioning(
            "urn:uuid:00000000-0000-4000-8000-d00000000001",
            "M1",
        )),
        proto(commissioning(
            "urn:uuid:00000000-0000-4000-8000-d00000000002",
            "M2",
        )),
        proto(
            json!({"type": "ObjectEvent", "eventID": "urn:uuid:00000000-0000-4000-8000-d00000000002",
            "eventTime": "2026-11-26T08:00:00Z", "eventTimeZoneOffset": "+00:00",
            "action": "ADD", "bizStep": "commissioning",
            "epcList": ["urn:epc:id:sgtin:4012345.011111.M2"],
            "errorDeclaration": {"declarationTime": "2026-11-26T09:00:00Z", "reason": "incorrect_data"}}),
        ),
    ];
    app.capture
        .clone()
        .capture(pb::CaptureRequest { events })
        .await
        .expect("captured");
    let db = Database::connect(app.database_url())
        .await
        .expect("database");
    let backend = db.get_database_backend();
    let rows = |db: &sea_orm::DatabaseConnection| {
        let db = db.clone();
        async move {
            let rows = db
                .query_all_raw(Statement::from_string(
                    backend,
                    "SELECT identifier, state, event_id FROM capture_lifecycle ORDER BY identifier",
                ))
                .await
                .expect("rows");
            rows.iter()
                .map(|row| {
                    (
                        row.try_get::<String>("", "identifier").expect("identifier"),
                        row.try_get::<i16>("", "state").expect("state"),
                    )
                })
                .collect::<Vec<_>>()
        }
    };
    let kept = rows(&db).await;
    assert_eq!(
        kept,
        [("https://id.gs1.org/01/04012345111118/21/M1".to_owned(), 1)],
        "M2's commissioning was declared erroneous"
    );
    for sql in [
        "DROP TABLE capture_lifecycle",
        "DELETE FROM capture_migrations WHERE version = 'm0010_capture_lifecycle'",
    ] {
        db.execute_raw(Statement::from_string(backend, sql.to_owned()))
            .await
            .expect("as before the migration");
    }
    let replica = app.spawn_replica().await.expect("migrates again");
    assert_eq!(rows(&db).await, kept, "rebuilt from the stored events");
    drop(db);
    replica.stop().await.expect("stops");
    app.stop().await.expect("stops");
}

/// A hand-set state (identity's `UpdateIdentifierStates`) is captured like every other
/// state change, so it races with the line on the same rules: each serial is commissioned
/// once, whichever comes first, and a hand-set decommissioning is what capture decides on.
#[tokio::test]
async fn hand_set_states_are_decided_with_captured_events() {
    use tonic::Code;
    let app = TestApp::spawn().await.expect("suite starts");
    let hand_set = |serial: &str, state: pb::IdentifierState, event_id: &str| {
        let mut identity = app.identity.clone();
        let request = pb::UpdateIdentifierStatesRequest {
            transitions: vec![pb::IdentifierStatus {
                epc: format!("urn:epc:id:sgtin:4012345.011111.{serial}"),
                state: state.into(),
                update_time: Some(prost_types::Timestamp {
                    seconds: 1_790_000_000,
                    nanos: 0,
                }),
                event_id: event_id.to_owned(),
            }],
        };
        async move { identity.update_identifier_states(request).await }
    };
    let races = (0..PAIRS).map(|n| {
        let serial = format!("H{n}");
        let line = format!("urn:uuid:00000000-0000-4000-8000-e1{n:010}");
        let (app, hand_set) = (&app, &hand_set);
        async move {
            let (by_hand, ()) = tokio::join!(
                hand_set(
                    &serial,
                    pb::IdentifierState::Commissioned,
                    &format!("manual-{n}")
                ),
                send(app, n % 2 == 1, commissioning(&line, &serial))
            );
            by_hand
        }
    });
    let by_hand = futures::future::join_all(races).await;
    let stored = app.stored_events().await;
    assert_eq!(stored.len(), PAIRS as usize, "one commissioning per serial");
    let line_wins = stored
        .iter()
        .filter(|(_, id)| id.starts_with("urn:uuid:"))
        .count();
    for answer in &by_hand {
        if let Err(status) = answer {
            assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
            assert!(
                status.message().starts_with("ALREADY_COMMISSIONED"),
                "{status:?}"
            );
        }
    }
    let hand_wins = by_hand.iter().filter(|answer| answer.is_ok()).count();
    assert_eq!(hand_wins + line_wins, PAIRS as usize);
    assert_eq!(
        quarantined(&app).await.len(),
        PAIRS as usize,
        "each loser is kept"
    );

    // Decommissioned by hand: the next scan of it is refused in capture.
    hand_set(
        "H0",
        pb::IdentifierState::Decommissioned,
        "manual-decommission",
    )
    .await
    .expect("decommissioned by hand");
    let observe = json!({"type": "ObjectEvent", "eventID": "urn:uuid:00000000-0000-4000-8000-e20000000000",
        "eventTime": "2026-11-26T10:00:00Z", "eventTimeZoneOffset": "+00:00",
        "action": "OBSERVE", "bizStep": "shipping",
        "epcList": ["urn:epc:id:sgtin:4012345.011111.H0"]});
    let result = app.capture_events(vec![proto(observe)]).await.remove(0);
    assert_eq!(
        result.violations[0].code, "RETIRED_IDENTIFIER",
        "{result:?}"
    );
    assert!(
        result.violations[0]
            .description
            .contains("manual-decommission")
    );
    app.stop().await.expect("clean stop");
}

/// A REST capture job is all or nothing by default (`GS1-Capture-Error-Behaviour:
/// rollback`), also when what refuses an event is decided at the commit: nothing of it is
/// stored. With `proceed` the rest is stored.
#[tokio::test]
async fn a_rolled_back_job_stores_nothing_when_a_commit_rule_refuses_one_event() {
    let app = TestApp::spawn().await.expect("suite starts");
    send(
        &app,
        false,
        commissioning("urn:uuid:00000000-0000-4000-8000-f00000000001", "J1"),
    )
    .await;
    let job = |behaviour: &'static str, fresh: &str| {
        let document = json!({
            "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
            "type": "EPCISDocument", "schemaVersion": "2.0", "creationDate": "2026-11-26T00:00:00Z",
            "epcisBody": {"eventList": [
                commissioning(&format!("urn:uuid:00000000-0000-4000-8000-f{fresh}"), fresh),
                commissioning("urn:uuid:00000000-0000-4000-8000-f00000000002", "J1"),
            ]},
        });
        let url = format!("http://{}/capture", app.http_addr);
        async move {
            let answer = reqwest::Client::new()
                .post(url)
                .header("content-type", "application/ld+json")
                .header("GS1-Capture-Error-Behaviour", behaviour)
                .body(document.to_string())
                .send()
                .await
                .expect("answer");
            assert_eq!(answer.status(), 202);
        }
    };
    job("rollback", "00000000003").await;
    assert_eq!(
        app.stored_events().await.len(),
        1,
        "nothing of the job stored"
    );
    let reasons: Vec<String> = quarantined(&app)
        .await
        .iter()
        .map(|entry| entry.violations[0].code.clone())
        .collect();
    assert_eq!(
        reasons
            .iter()
            .filter(|r| *r == "CAPTURE_JOB_ROLLED_BACK")
            .count(),
        1,
        "{reasons:?}"
    );
    assert!(
        reasons.contains(&"ALREADY_COMMISSIONED".to_owned()),
        "{reasons:?}"
    );
    job("proceed", "00000000004").await;
    assert_eq!(
        app.stored_events().await.len(),
        2,
        "the fresh serial stored"
    );
    app.stop().await.expect("clean stop");
}
