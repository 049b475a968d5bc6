//! Tamper evidence: stored events are hash-chained, and `VerifyIntegrity` finds the first
//! event edited, removed or reordered directly in the database.

use sea_orm::{ConnectionTrait, Database, Statement};
use tracery_e2e::TestApp;
use tracery_proto::v1 as pb;

fn observed(n: u32) -> pb::EpcisEvent {
    pb::EpcisEvent {
        event_id: format!("urn:uuid:00000000-0000-4000-8000-e{n:011}"),
        event_time: Some(prost_types::Timestamp {
            seconds: 1_795_651_200 + i64::from(n),
            nanos: 0,
        }),
        event_time_zone_offset: "+01:00".to_owned(),
        biz_step: "inspecting".to_owned(),
        body: Some(pb::epcis_event::Body::ObjectEvent(pb::ObjectEvent {
            action: pb::Action::Observe.into(),
            epcs: vec![format!("urn:epc:id:sgtin:4012345.011111.T{n}")],
            ..Default::default()
        })),
        ..Default::default()
    }
}

async fn verify(app: &TestApp) -> pb::VerifyIntegrityResponse {
    app.capture
        .clone()
        .verify_integrity(pb::VerifyIntegrityRequest {})
        .await
        .expect("verified")
        .into_inner()
}

#[tokio::test]
async fn edits_behind_the_services_back_are_detected() {
    let app = TestApp::spawn().await.expect("suite starts");
    let mut capture = app.capture.clone();
    // Two batches: the chain runs across appends.
    for batch in [1..4, 4..7] {
        let events = batch.map(observed).collect();
        capture
            .capture(pb::CaptureRequest { events })
            .await
            .expect("captured");
    }
    let intact = verify(&app).await;
    assert!(intact.intact, "{intact:?}");
    assert_eq!(intact.checked, 6);
    assert_eq!(intact.audit_checked, 2, "the two capture calls are audited");

    let db = Database::connect(app.database_url())
        .await
        .expect("database");
    let backend = db.get_database_backend();
    let run = |sql: &str| Statement::from_string(backend, sql.to_owned());

    // A query column changed without its payload.
    db.execute_raw(run(
        "UPDATE capture_events SET biz_step = 'shipping' WHERE sequence = 5",
    ))
    .await
    .expect("tampered");
    let report = verify(&app).await;
    assert!(!report.intact);
    assert_eq!(report.first_broken_sequence, 5);
    assert!(report.reason.contains("biz_step"), "{}", report.reason);
    db.execute_raw(run(
        "UPDATE capture_events SET biz_step = 'inspecting' WHERE sequence = 5",
    ))
    .await
    .expect("restored");
    assert!(verify(&app).await.intact);

    // The stored event itself changed.
    db.execute_raw(run(
        "UPDATE capture_events SET payload = REPLACE(payload, 'T3', 'T9') WHERE sequence = 3",
    ))
    .await
    .expect("tampered");
    let report = verify(&app).await;
    assert_eq!(report.first_broken_sequence, 3, "{report:?}");
    assert!(report.reason.contains("hash link"), "{}", report.reason);
    db.execute_raw(run(
        "UPDATE capture_events SET payload = REPLACE(payload, 'T9', 'T3') WHERE sequence = 3",
    ))
    .await
    .expect("restored");
    assert!(verify(&app).await.intact);

    // The audit trail rewritten: someone else did it.
    db.execute_raw(run("UPDATE audit_log SET subject = 'mallory' WHERE id = 1"))
        .await
        .expect("tampered");
    let report = verify(&app).await;
    assert!(!report.intact);
    assert_eq!(report.first_broken_sequence, 0, "the events are fine");
    assert_eq!(report.audit_first_broken_id, 1, "{report:?}");
    db.execute_raw(run(
        "UPDATE audit_log SET subject = 'dev-mode' WHERE id = 1",
    ))
    .await
    .expect("restored");
    assert!(verify(&app).await.intact);

    // An event removed: the next one's link breaks.
    db.execute_raw(run("DELETE FROM capture_events WHERE sequence = 2"))
        .await
        .expect("removed");
    let report = verify(&app).await;
    assert_eq!(report.first_broken_sequence, 3, "{report:?}");
    assert_eq!(report.checked, 2);
    drop(db);
    app.stop().await.expect("clean stop");
}
