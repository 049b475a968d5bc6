//! Tamper evidence: stored events and the audit trail are hash-chained with a key kept
//! outside the database, their heads are checkpointed outside it, and `VerifyIntegrity`
//! finds the first row edited, removed or reordered directly in the database — also when
//! the attacker recomputed the links after it.

use std::time::Duration;

use sea_orm::{ConnectionTrait, Database, Statement};
use tracery_e2e::TestApp;
use tracery_proto::v1 as pb;
use tracery_runtime::integrity::{ChainKeys, GENESIS, Integrity, legacy_link};

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
    let intact = app.verify_integrity().await;
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
    let report = app.verify_integrity().await;
    assert!(!report.intact);
    assert_eq!(report.first_broken_sequence, 5);
    assert!(report.reason.contains("biz_step"), "{}", report.reason);
    db.execute_raw(run(
        "UPDATE capture_events SET biz_step = 'inspecting' WHERE sequence = 5",
    ))
    .await
    .expect("restored");
    assert!(app.verify_integrity().await.intact);

    let undamaged = event_rows(&db).await.remove(3).2;
    // The stored event itself changed.
    edit_payload(&db, 3, |text| text.replace("T3", "T9")).await;
    let report = app.verify_integrity().await;
    assert_eq!(report.first_broken_sequence, 3, "{report:?}");
    assert!(report.reason.contains("hash link"), "{}", report.reason);
    edit_payload(&db, 3, |text| text.replace("T9", "T3")).await;
    assert!(app.verify_integrity().await.intact);

    // A compressed payload damaged: it no longer reads, and says so.
    set_payload(&db, 4, b"\x28\xb5\x2f\xfd garbage".to_vec(), None).await;
    let report = app.verify_integrity().await;
    assert_eq!(report.first_broken_sequence, 4, "{report:?}");
    assert!(report.reason.contains("decompress"), "{}", report.reason);
    // Written back as text, the form of rows stored before compression: it reads again.
    set_payload(&db, 4, undamaged.into_bytes(), None).await;
    assert!(app.verify_integrity().await.intact);

    // The audit trail rewritten: someone else did it.
    db.execute_raw(run("UPDATE audit_log SET subject = 'mallory' WHERE id = 1"))
        .await
        .expect("tampered");
    let report = app.verify_integrity().await;
    assert!(!report.intact);
    assert_eq!(report.first_broken_sequence, 0, "the events are fine");
    assert_eq!(report.audit_first_broken_id, 1, "{report:?}");
    db.execute_raw(run(
        "UPDATE audit_log SET subject = 'dev-mode' WHERE id = 1",
    ))
    .await
    .expect("restored");
    assert!(app.verify_integrity().await.intact);

    // An event removed: the next one's link breaks.
    db.execute_raw(run("DELETE FROM capture_events WHERE sequence = 2"))
        .await
        .expect("removed");
    let report = app.verify_integrity().await;
    assert_eq!(report.first_broken_sequence, 3, "{report:?}");
    assert_eq!(report.checked, 2);
    drop(db);
    app.stop().await.expect("clean stop");
}

/// A stored payload's text: a zstd frame (a store this small has no trained dictionary)
/// or, as rows from before compression are, the text itself.
fn payload_text(stored: &[u8]) -> String {
    let bytes = if stored.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        zstd::decode_all(stored).expect("a zstd frame")
    } else {
        stored.to_vec()
    };
    String::from_utf8(bytes).expect("UTF-8")
}

/// Sets row `sequence`'s stored payload, and its link when given, as an attacker would.
async fn set_payload(
    db: &sea_orm::DatabaseConnection,
    sequence: i64,
    stored: Vec<u8>,
    link: Option<String>,
) {
    let backend = db.get_database_backend();
    let (sql, values): (&str, Vec<sea_orm::Value>) = match (backend, link) {
        (sea_orm::DbBackend::Postgres, Some(link)) => (
            "UPDATE capture_events SET payload = $1, chain_hash = $2 WHERE sequence = $3",
            vec![stored.into(), link.into(), sequence.into()],
        ),
        (sea_orm::DbBackend::Postgres, None) => (
            "UPDATE capture_events SET payload = $1 WHERE sequence = $2",
            vec![stored.into(), sequence.into()],
        ),
        (_, Some(link)) => (
            "UPDATE capture_events SET payload = ?, chain_hash = ? WHERE sequence = ?",
            vec![stored.into(), link.into(), sequence.into()],
        ),
        (_, None) => (
            "UPDATE capture_events SET payload = ? WHERE sequence = ?",
            vec![stored.into(), sequence.into()],
        ),
    };
    db.execute_raw(Statement::from_sql_and_values(backend, sql, values))
        .await
        .expect("payload written");
}

/// Edits row `sequence`'s payload text and stores it compressed again.
async fn edit_payload(
    db: &sea_orm::DatabaseConnection,
    sequence: i64,
    edit: impl Fn(&str) -> String,
) {
    let rows = event_rows(db).await;
    let (_, _, text, _) = rows
        .into_iter()
        .find(|row| row.0 == sequence)
        .expect("the row");
    set_payload(db, sequence, compressed(&edit(&text)), None).await;
}

fn compressed(text: &str) -> Vec<u8> {
    zstd::encode_all(text.as_bytes(), 3).expect("compressed")
}

/// Events' `(sequence, store key, payload text, link)` as stored.
async fn event_rows(db: &sea_orm::DatabaseConnection) -> Vec<(i64, String, String, String)> {
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT sequence, event_id, payload, chain_hash FROM capture_events ORDER BY sequence",
        ))
        .await
        .expect("rows");
    rows.iter()
        .map(|row| {
            (
                row.try_get("", "sequence").expect("sequence"),
                row.try_get("", "event_id").expect("event_id"),
                payload_text(&row.try_get::<Vec<u8>>("", "payload").expect("payload")),
                row.try_get("", "chain_hash").expect("chain_hash"),
            )
        })
        .collect()
}

/// Rewrites the event chain from `from` on as an attacker with write access would: the
/// payload of row `from` edited by `edit`, and every later link recomputed with `link`.
async fn rewrite_events(
    db: &sea_orm::DatabaseConnection,
    from: i64,
    edit: impl Fn(&str) -> String,
    link: impl Fn(&str, &[&str]) -> String,
) {
    let rows = event_rows(db).await;
    let mut previous = rows
        .iter()
        .take_while(|row| row.0 < from)
        .last()
        .map_or_else(|| GENESIS.to_owned(), |row| row.3.clone());
    for (sequence, key, payload, _) in rows.into_iter().filter(|row| row.0 >= from) {
        let payload = if sequence == from {
            edit(&payload)
        } else {
            payload
        };
        let new_link = link(&previous, &[&key, &payload]);
        set_payload(db, sequence, compressed(&payload), Some(new_link.clone())).await;
        previous = new_link;
    }
}

/// Recomputes every audit link unkeyed, the first row's subject changed to `first_subject`
/// when given.
async fn rewrite_audit_unkeyed(db: &sea_orm::DatabaseConnection, first_subject: Option<&str>) {
    use sea_orm::{ActiveModelTrait as _, EntityTrait as _, QueryOrder as _, Set};
    use tracery_runtime::audit::entry;
    let rows = entry::Entity::find()
        .order_by_asc(entry::Column::Id)
        .all(db)
        .await
        .expect("audit rows");
    let mut previous = GENESIS.to_owned();
    for (index, row) in rows.into_iter().enumerate() {
        let subject = match first_subject {
            Some(subject) if index == 0 => subject.to_owned(),
            _ => row.subject.clone(),
        };
        let link = legacy_link(
            &previous,
            &[
                &row.at.to_rfc3339(),
                &subject,
                &row.action,
                &row.source,
                &row.request_id,
            ],
        );
        let mut active: entry::ActiveModel = row.into();
        active.subject = Set(subject);
        active.chain_hash = Set(link.clone());
        active.update(db).await.expect("rewritten");
        previous = link;
    }
}

async fn capture_events(app: &TestApp, numbers: std::ops::Range<u32>) {
    app.capture
        .clone()
        .capture(pb::CaptureRequest {
            events: numbers.map(observed).collect(),
        })
        .await
        .expect("captured");
}

#[tokio::test]
async fn links_recomputed_without_the_key_are_found() {
    let app = TestApp::spawn().await.expect("suite starts");
    capture_events(&app, 1..4).await;
    capture_events(&app, 4..7).await;
    assert!(app.verify_integrity().await.intact);
    let db = Database::connect(app.database_url())
        .await
        .expect("database");

    // What the README promises against: an edited event with every later link recomputed
    // the way the chain used to be computed (plain SHA-256), so each link "matches".
    rewrite_events(
        &db,
        3,
        |p| p.replace("011111.T3\"", "011111.T9\""),
        legacy_link,
    )
    .await;
    rewrite_audit_unkeyed(&db, Some("mallory")).await;
    let report = app.verify_integrity().await;
    assert!(!report.intact);
    assert_eq!(report.first_broken_sequence, 3, "{report:?}");
    assert!(report.reason.contains("hash link"), "{}", report.reason);
    assert_eq!(report.audit_first_broken_id, 1, "{report:?}");
    drop(db);
    app.stop().await.expect("clean stop");
}

/// Polls the suite's checkpoint file until the events chain has a checkpoint at `position`.
async fn await_checkpoint(app: &TestApp, position: i64) {
    let integrity = Integrity::load(app.integrity()).expect("keys");
    for _ in 0..100 {
        let held = integrity.checkpoints().expect("readable");
        if held.of("events").iter().any(|c| c.position == position) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no checkpoint of position {position} was written");
}

#[tokio::test]
async fn checkpoints_outside_the_database_catch_a_keyed_rewrite_and_dropped_rows() {
    let fast = |config: &mut tracery_runtime::Config| {
        config.integrity.checkpoint_interval = Duration::from_millis(200);
    };
    // Someone who stole the key as well rewrites history; the checkpoints show it.
    let app = TestApp::spawn_with(fast).await.expect("suite starts");
    capture_events(&app, 1..7).await;
    await_checkpoint(&app, 6).await;
    capture_events(&app, 7..10).await;
    await_checkpoint(&app, 9).await;
    let db = Database::connect(app.database_url())
        .await
        .expect("database");
    let keys = ChainKeys::load(app.integrity()).expect("the stolen key");
    rewrite_events(
        &db,
        2,
        |p| p.replace("011111.T2\"", "011111.T8\""),
        |previous, parts| keys.link(previous, parts),
    )
    .await;
    let report = app.verify_integrity().await;
    assert!(!report.intact);
    assert_eq!(report.first_broken_sequence, 6, "{report:?}");
    assert!(report.reason.contains("checkpoint"), "{}", report.reason);
    assert_eq!(
        report.broken_after_checkpoint, None,
        "the rewrite falls before the first checkpoint"
    );
    assert!(report.checkpoints >= 2, "{report:?}");
    drop(db);
    app.stop().await.expect("clean stop");

    // The newest rows removed after a checkpoint recorded them.
    let app = TestApp::spawn_with(fast).await.expect("suite starts");
    capture_events(&app, 1..7).await;
    await_checkpoint(&app, 6).await;
    capture_events(&app, 7..10).await;
    await_checkpoint(&app, 9).await;
    let db = Database::connect(app.database_url())
        .await
        .expect("database");
    db.execute_raw(Statement::from_string(
        db.get_database_backend(),
        "DELETE FROM capture_events WHERE sequence > 7".to_owned(),
    ))
    .await
    .expect("removed");
    let report = app.verify_integrity().await;
    assert!(!report.intact, "{report:?}");
    assert_eq!(report.first_broken_sequence, 9, "{report:?}");
    assert!(report.reason.contains("gone"), "{}", report.reason);
    let after = report
        .broken_after_checkpoint
        .expect("a checkpoint held before");
    assert!((6..=7).contains(&after.position), "{after:?}");
    drop(db);
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn a_chain_written_before_keys_is_relinked_once_when_intact() {
    let app = TestApp::spawn().await.expect("suite starts");
    capture_events(&app, 1..6).await;
    let db = Database::connect(app.database_url())
        .await
        .expect("database");
    // As an earlier release left it: every link plain SHA-256.
    rewrite_events(&db, 1, str::to_owned, legacy_link).await;
    let report = app.verify_integrity().await;
    assert_eq!(
        report.first_broken_sequence, 1,
        "unkeyed links are not accepted"
    );
    // The next start verifies the old chain and re-links it with the key.
    let replica = app.spawn_replica().await.expect("replica starts");
    let report = replica.verify_integrity().await;
    assert!(report.intact, "{report:?}");
    assert_eq!(report.checked, 5);
    assert!(report.audit_checked >= 1, "{report:?}");
    drop(db);
    replica.stop().await.expect("clean stop");
    app.stop().await.expect("clean stop");
}

/// A capture's audit record commits with its events: each call, stored or refused before
/// it wrote anything, has exactly one record, and the chain still verifies.
#[tokio::test]
async fn each_capture_call_has_one_audit_record_committed_with_it() {
    let app = TestApp::spawn_with(|config| config.limits.max_events_per_batch = 2)
        .await
        .expect("suite starts");
    let mut capture = app.capture.clone();
    for n in 0..3 {
        capture
            .capture(pb::CaptureRequest {
                events: vec![observed(100 + n)],
            })
            .await
            .expect("stored");
    }
    capture
        .capture(pb::CaptureRequest {
            events: (200..203).map(observed).collect(),
        })
        .await
        .expect_err("over limits.max_events_per_batch: nothing stored");
    let document = serde_json::json!({
        "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
        "type": "EPCISDocument", "schemaVersion": "2.0", "creationDate": "2026-11-26T00:00:00Z",
        "epcisBody": {"eventList": [tracery_epcis::json::event_to_json(
            &tracery_epcis::proto::event_from_proto(&observed(300)).expect("event"),
        )]},
    });
    let answer = reqwest::Client::new()
        .post(format!("http://{}/capture", app.http_addr))
        .header("content-type", "application/ld+json")
        .body(document.to_string())
        .send()
        .await
        .expect("answer");
    assert_eq!(answer.status(), 202);
    let audit = app.audit_log().await.expect("audit trail");
    let count = |action: &str| audit.iter().filter(|(_, a, ..)| a == action).count();
    assert_eq!(count("/tracery.v1.CaptureService/Capture"), 4, "{audit:?}");
    assert_eq!(count("POST /capture"), 1, "{audit:?}");
    let report = app
        .capture
        .clone()
        .verify_integrity(pb::VerifyIntegrityRequest::default())
        .await
        .expect("verified")
        .into_inner();
    assert!(report.intact, "{report:?}");
    app.stop().await.expect("stops");
}
