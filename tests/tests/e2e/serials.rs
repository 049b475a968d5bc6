//! Serial pools: idempotent allocation, exhaustion, no duplicates across concurrent clients
//! and replicas, and the identifier lifecycle.

use std::collections::HashSet;

use futures::StreamExt as _;
use tonic::Code;
use tonic_types::StatusExt as _;
use tracery_e2e::TestApp;
use tracery_proto::v1::{self as pb, identity_service_client::IdentityServiceClient};

const GTIN: &str = "09506000134352";

async fn create_pool(
    client: &mut IdentityServiceClient<tonic::transport::Channel>,
    name: &str,
    length: i32,
    order: pb::SerialOrder,
) -> pb::SerialPool {
    client
        .create_serial_pool(pb::CreateSerialPoolRequest {
            pool: Some(pb::SerialPool {
                name: name.to_owned(),
                gtin: GTIN.to_owned(),
                format: pb::SerialFormat::Numeric.into(),
                length,
                order: order.into(),
                ..Default::default()
            }),
        })
        .await
        .expect("pool created")
        .into_inner()
        .pool
        .expect("pool")
}

/// All serials of one allocation, ranges expanded (sequential numeric pools).
async fn allocate(
    client: &mut IdentityServiceClient<tonic::transport::Channel>,
    pool: &str,
    count: u64,
    request_id: &str,
) -> Result<Vec<String>, tonic::Status> {
    let mut stream = client
        .allocate_serials(pb::AllocateSerialsRequest {
            pool: pool.to_owned(),
            count,
            request_id: request_id.to_owned(),
        })
        .await?
        .into_inner();
    let mut serials = Vec::new();
    while let Some(message) = stream.next().await {
        let message = message?;
        for range in message.ranges {
            let width = range.first.len();
            let first: u64 = range.first.parse().expect("numeric");
            serials.extend((first..first + range.count).map(|n| format!("{n:0width$}")));
        }
        serials.extend(message.serials);
    }
    Ok(serials)
}

#[tokio::test]
async fn allocation_is_idempotent_and_exhaustion_is_reported() {
    let mut app = TestApp::spawn().await.expect("suite starts");
    let pool = create_pool(&mut app.identity, "ibu-seq", 3, pb::SerialOrder::Sequential).await;
    assert_eq!(pool.remaining, 1000);

    let first = allocate(&mut app.identity, "ibu-seq", 600, "job-1")
        .await
        .expect("allocates");
    assert_eq!(first.first().map(String::as_str), Some("000"));
    assert_eq!(first.len(), 600);
    let repeated = allocate(&mut app.identity, "ibu-seq", 600, "job-1")
        .await
        .expect("repeat");
    assert_eq!(
        repeated, first,
        "the same request id returns the same serials"
    );

    let status = allocate(&mut app.identity, "ibu-seq", 500, "job-2")
        .await
        .expect_err("too many");
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert!(
        status.message().contains("400 serials left"),
        "{}",
        status.message()
    );

    let status = allocate(&mut app.identity, "ibu-seq", 10, "job-1")
        .await
        .expect_err("reused id");
    assert_eq!(status.code(), Code::InvalidArgument);
    let violation = &status
        .get_details_bad_request()
        .expect("BadRequest")
        .field_violations[0];
    assert_eq!(
        (violation.field.as_str(), violation.reason.as_str()),
        ("request_id", "REQUEST_ID_REUSED")
    );

    let rest = allocate(&mut app.identity, "ibu-seq", 400, "job-3")
        .await
        .expect("the rest");
    assert_eq!(rest.last().map(String::as_str), Some("999"));
    let remaining = app
        .identity
        .get_serial_pool(pb::GetSerialPoolRequest {
            name: "ibu-seq".into(),
        })
        .await
        .expect("pool")
        .into_inner()
        .pool
        .expect("pool")
        .remaining;
    assert_eq!(remaining, 0);

    let status = app
        .identity
        .create_serial_pool(pb::CreateSerialPoolRequest {
            pool: Some(pb::SerialPool {
                name: "tiny-random".into(),
                gtin: GTIN.into(),
                format: pb::SerialFormat::Numeric.into(),
                length: 4,
                order: pb::SerialOrder::Randomised.into(),
                ..Default::default()
            }),
        })
        .await
        .expect_err("too small to randomise");
    assert_eq!(status.code(), Code::InvalidArgument);
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn concurrent_clients_on_two_replicas_never_get_a_duplicate() {
    const CLIENTS: usize = 8;
    const REQUESTS: usize = 25;
    const PER_REQUEST: u64 = 500;
    let mut app = TestApp::spawn().await.expect("suite starts");
    let replica = app.spawn_replica().await.expect("second replica starts");
    create_pool(
        &mut app.identity,
        "ibu-random",
        12,
        pb::SerialOrder::Randomised,
    )
    .await;

    let mut tasks = Vec::new();
    for client_index in 0..CLIENTS {
        // Half the clients talk to each replica, each over its own connection.
        let addr = if client_index % 2 == 0 {
            app.grpc_addr
        } else {
            replica.grpc_addr
        };
        tasks.push(tokio::spawn(async move {
            let mut client = IdentityServiceClient::connect(format!("http://{addr}"))
                .await
                .expect("connects");
            let mut serials = Vec::new();
            for request in 0..REQUESTS {
                let id = format!("client-{client_index}-request-{request}");
                serials.extend(
                    allocate(&mut client, "ibu-random", PER_REQUEST, &id)
                        .await
                        .expect("allocates"),
                );
                if request == 0 {
                    // A retried request (say, after a timeout) must not consume new serials.
                    let again = allocate(&mut client, "ibu-random", PER_REQUEST, &id)
                        .await
                        .expect("retry");
                    assert_eq!(again.len(), usize::try_from(PER_REQUEST).expect("small"));
                }
            }
            serials
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.expect("client finished"));
    }
    let expected = CLIENTS * REQUESTS * usize::try_from(PER_REQUEST).expect("small");
    assert_eq!(all.len(), expected);
    let unique: HashSet<&String> = all.iter().collect();
    assert_eq!(unique.len(), expected, "no serial was handed out twice");
    assert!(
        all.iter()
            .all(|s| s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit()))
    );

    let pool = app
        .identity
        .get_serial_pool(pb::GetSerialPoolRequest {
            name: "ibu-random".into(),
        })
        .await
        .expect("pool")
        .into_inner()
        .pool
        .expect("pool");
    assert_eq!(
        pool.remaining,
        1_000_000_000_000 - expected as u64,
        "retries consumed nothing"
    );
    replica.stop().await.expect("replica stops");
    app.stop().await.expect("clean stop");
}

fn transition(epc: &str, state: pb::IdentifierState, event: &str) -> pb::IdentifierStatus {
    pb::IdentifierStatus {
        epc: epc.to_owned(),
        state: state.into(),
        update_time: Some(prost_types::Timestamp {
            seconds: 1_790_000_000,
            nanos: 0,
        }),
        event_id: event.to_owned(),
    }
}

#[tokio::test]
async fn identifiers_move_through_their_lifecycle() {
    let mut app = TestApp::spawn().await.expect("suite starts");
    app.identity
        .register_product(pb::RegisterProductRequest {
            product: Some(pb::Product {
                gtin: GTIN.into(),
                item_code: "IBU".into(),
                company_prefix_length: 7,
                ..Default::default()
            }),
        })
        .await
        .expect("product");
    create_pool(
        &mut app.identity,
        "ibu-life",
        6,
        pb::SerialOrder::Sequential,
    )
    .await;
    let serials = allocate(&mut app.identity, "ibu-life", 2, "r1")
        .await
        .expect("allocates");
    let allocated = format!("urn:epc:id:sgtin:9506000.013435.{}", serials[0]);
    // The same identifier written as an element string and as a Digital Link.
    let as_element_string = format!("(01){GTIN}(21){}", serials[0]);
    let as_link = format!("https://id.gs1.org/01/{GTIN}/21/{}", serials[1]);
    let unknown = "urn:epc:id:sgtin:9506000.013435.XYZ";

    let states = |statuses: Vec<pb::IdentifierStatus>| -> Vec<(String, i32)> {
        statuses.into_iter().map(|s| (s.epc, s.state)).collect()
    };
    let before = app
        .identifier_statuses(vec![as_element_string.clone(), as_link, unknown.into()])
        .await;
    assert_eq!(
        states(before),
        [
            (allocated.clone(), pb::IdentifierState::Allocated as i32),
            (
                format!("urn:epc:id:sgtin:9506000.013435.{}", serials[1]),
                pb::IdentifierState::Allocated as i32
            ),
            (unknown.to_owned(), pb::IdentifierState::Unknown as i32),
        ]
    );

    let commission = transition(&allocated, pb::IdentifierState::Commissioned, "ev-1");
    for _ in 0..2 {
        // The second call is a replay of the same event: accepted, nothing changes.
        app.identity
            .update_identifier_states(pb::UpdateIdentifierStatesRequest {
                transitions: vec![commission.clone()],
            })
            .await
            .expect("commissioned");
    }
    let status = app
        .identity
        .update_identifier_states(pb::UpdateIdentifierStatesRequest {
            transitions: vec![transition(
                &as_element_string,
                pb::IdentifierState::Commissioned,
                "ev-2",
            )],
        })
        .await
        .expect_err("commissioning twice would mean a duplicate serial in the field");
    assert_eq!(status.code(), Code::FailedPrecondition);
    // Decided by capture's rules, where the hand-set state was stored as an event.
    assert!(
        status.message().starts_with("ALREADY_COMMISSIONED") && status.message().contains("ev-1"),
        "{}",
        status.message()
    );

    for (state, event) in [
        (pb::IdentifierState::Decommissioned, "ev-3"),
        (pb::IdentifierState::Destroyed, "ev-4"),
    ] {
        app.identity
            .update_identifier_states(pb::UpdateIdentifierStatesRequest {
                transitions: vec![transition(&allocated, state, event)],
            })
            .await
            .expect("allowed transition");
    }
    let status = app
        .identity
        .update_identifier_states(pb::UpdateIdentifierStatesRequest {
            transitions: vec![
                transition(unknown, pb::IdentifierState::Commissioned, "ev-5"),
                transition(&allocated, pb::IdentifierState::Commissioned, "ev-5"),
            ],
        })
        .await
        .expect_err("destroyed is final");
    assert_eq!(status.code(), Code::FailedPrecondition);
    let after = app.identifier_status(unknown).await;
    assert_eq!(
        after.state,
        pb::IdentifierState::Unknown as i32,
        "a failed batch changes nothing"
    );
    let destroyed = app.identifier_status(&allocated).await;
    assert_eq!(
        (destroyed.state, destroyed.event_id.as_str()),
        (pb::IdentifierState::Destroyed as i32, "ev-4")
    );

    let status = app
        .identity
        .get_identifier_state(pb::GetIdentifierStateRequest {
            epc: "(01)04006381333931(21)1".into(),
        })
        .await
        .expect_err("unregistered GTIN, so no company prefix length");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        status
            .get_details_bad_request()
            .expect("BadRequest")
            .field_violations[0]
            .field,
        "epc"
    );
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn allocations_survive_a_restart() {
    let mut app = TestApp::spawn().await.expect("suite starts");
    create_pool(
        &mut app.identity,
        "ibu-restart",
        6,
        pb::SerialOrder::Sequential,
    )
    .await;
    let mut instance = app.spawn_replica().await.expect("instance starts");
    let before = allocate(&mut instance.identity, "ibu-restart", 10, "before")
        .await
        .expect("allocates");
    instance.stop().await.expect("instance stops");

    let mut restarted = app.spawn_replica().await.expect("instance restarts");
    let repeated = allocate(&mut restarted.identity, "ibu-restart", 10, "before")
        .await
        .expect("repeat after restart");
    assert_eq!(repeated, before, "idempotency outlives the process");
    let after = allocate(&mut restarted.identity, "ibu-restart", 5, "after")
        .await
        .expect("allocates");
    assert_eq!(
        after.first().map(String::as_str),
        Some("000010"),
        "the counter is durable"
    );
    restarted.stop().await.expect("stops");
    app.stop().await.expect("clean stop");
}

/// An ObjectEvent with `action` on one `epc`.
fn object_event(
    event_id: &str,
    action: pb::Action,
    epc: &str,
    biz_step: &str,
    minute: i64,
) -> pb::EpcisEvent {
    crate::capture::object_event(event_id, action, &[epc], biz_step, minute)
}

async fn wait_for_state(
    app: &mut TestApp,
    epc: &str,
    state: pb::IdentifierState,
) -> pb::IdentifierStatus {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let status = app.identifier_status(epc).await;
        if status.state == state as i32 {
            return status;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{epc} never became {state:?}: {status:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn captured_events_drive_the_identifier_lifecycle() {
    let mut app = TestApp::spawn().await.expect("suite starts");
    app.identity
        .register_product(pb::RegisterProductRequest {
            product: Some(pb::Product {
                gtin: GTIN.into(),
                item_code: "IBU".into(),
                company_prefix_length: 7,
                ..Default::default()
            }),
        })
        .await
        .expect("product");
    let urn = "urn:epc:id:sgtin:9506000.013435.LOT7-0001";
    // Commissioned as a Digital Link, decommissioned and destroyed as an EPC URN: the same unit.
    let link = format!("https://id.gs1.org/01/{GTIN}/21/LOT7-0001");
    let events = vec![object_event(
        "urn:uuid:00000000-0000-4000-8000-0000000000c1",
        pb::Action::Add,
        &link,
        "commissioning",
        0,
    )];
    app.capture
        .capture(pb::CaptureRequest { events })
        .await
        .expect("captures");
    let commissioned = wait_for_state(&mut app, urn, pb::IdentifierState::Commissioned).await;
    assert_eq!(
        commissioned.event_id,
        "urn:uuid:00000000-0000-4000-8000-0000000000c1"
    );

    let events = vec![object_event(
        "urn:uuid:00000000-0000-4000-8000-0000000000c2",
        pb::Action::Delete,
        urn,
        "destroying",
        5,
    )];
    app.capture
        .capture(pb::CaptureRequest { events })
        .await
        .expect("captures");
    let destroyed = wait_for_state(&mut app, urn, pb::IdentifierState::Destroyed).await;
    assert_eq!(
        destroyed.event_id,
        "urn:uuid:00000000-0000-4000-8000-0000000000c2"
    );
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn lifecycle_rules_quarantine_duplicate_and_retired_identifiers() {
    let mut app = TestApp::spawn().await.expect("suite starts");
    let unit = "urn:epc:id:sgtin:9506000.013435.R-1";
    let id = |n: u32| format!("urn:uuid:00000000-0000-4000-8000-0000000001{n:02}");
    let capture = |events: Vec<pb::EpcisEvent>| pb::CaptureRequest { events };
    let outcomes = |results: &[pb::EventResult]| -> Vec<(i32, Vec<String>)> {
        results
            .iter()
            .map(|r| {
                (
                    r.outcome,
                    r.violations.iter().map(|v| v.code.clone()).collect(),
                )
            })
            .collect()
    };
    let accepted = pb::CaptureOutcome::Accepted as i32;
    let quarantined = pb::CaptureOutcome::Quarantined as i32;

    // Commissioned and observed in one batch: judged in order, so no complaint.
    let results = app
        .capture_events(vec![
            object_event(&id(1), pb::Action::Add, unit, "commissioning", 0),
            object_event(&id(2), pb::Action::Observe, unit, "packing", 1),
        ])
        .await;
    assert_eq!(outcomes(&results), [(accepted, vec![]), (accepted, vec![])]);
    wait_for_state(&mut app, unit, pb::IdentifierState::Commissioned).await;

    let results = app
        .capture_events(vec![object_event(
            &id(3),
            pb::Action::Add,
            unit,
            "commissioning",
            2,
        )])
        .await;
    assert_eq!(
        outcomes(&results),
        [(quarantined, vec!["ALREADY_COMMISSIONED".to_owned()])]
    );
    assert!(
        results[0].violations[0].description.contains(&id(1)),
        "names the first commissioning"
    );

    // Resending the commissioning event is a duplicate, not a second commissioning.
    let results = app
        .capture_events(vec![object_event(
            &id(1),
            pb::Action::Add,
            unit,
            "commissioning",
            0,
        )])
        .await;
    assert_eq!(
        outcomes(&results),
        [(pb::CaptureOutcome::Duplicate as i32, vec![])]
    );

    app.capture
        .capture(capture(vec![object_event(
            &id(4),
            pb::Action::Delete,
            unit,
            "decommissioning",
            3,
        )]))
        .await
        .expect("captures");
    wait_for_state(&mut app, unit, pb::IdentifierState::Decommissioned).await;
    let results = app
        .capture_events(vec![object_event(
            &id(5),
            pb::Action::Observe,
            unit,
            "shipping",
            4,
        )])
        .await;
    assert_eq!(
        outcomes(&results),
        [(quarantined, vec!["RETIRED_IDENTIFIER".to_owned()])]
    );
    app.stop().await.expect("clean stop");
}
