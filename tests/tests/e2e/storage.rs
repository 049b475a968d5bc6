//! The compact event store: payloads kept as zstd frames under a dictionary the store
//! trains on its own events, identifiers stored once and indexed by number, and stores of
//! the layout before converted in place without losing an event, a chain link, a query
//! column or an identifier's events, nor genealogy's history.

use std::time::Duration;

use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement};
use tracery_e2e::TestApp;
use tracery_proto::v1 as pb;

const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
/// What the store trains its dictionary on (`payloads::TRAINING_EVENTS`).
const TRAINING_EVENTS: u32 = 2_000;

fn inspected(n: u32) -> pb::EpcisEvent {
    pb::EpcisEvent {
        event_id: format!("urn:uuid:00000000-0000-4000-8000-f{n:011}"),
        event_time: Some(prost_types::Timestamp {
            seconds: 1_795_651_200 + i64::from(n),
            nanos: 0,
        }),
        event_time_zone_offset: "+01:00".to_owned(),
        biz_step: "inspecting".to_owned(),
        disposition: if n.is_multiple_of(7) {
            "non_conformant"
        } else {
            "conformant"
        }
        .to_owned(),
        body: Some(pb::epcis_event::Body::ObjectEvent(pb::ObjectEvent {
            action: pb::Action::Observe.into(),
            epcs: vec![format!("urn:epc:id:sgtin:4012345.011111.S{n}")],
            ..Default::default()
        })),
        ..Default::default()
    }
}

/// Units `numbers` packed into one case.
fn packed(case: &str, numbers: std::ops::Range<u32>) -> pb::EpcisEvent {
    pb::EpcisEvent {
        event_id: format!("urn:uuid:00000000-0000-4000-8000-c{:011}", numbers.start),
        event_time: Some(prost_types::Timestamp {
            seconds: 1_795_660_000 + i64::from(numbers.start),
            nanos: 0,
        }),
        event_time_zone_offset: "+01:00".to_owned(),
        biz_step: "packing".to_owned(),
        body: Some(pb::epcis_event::Body::AggregationEvent(
            pb::AggregationEvent {
                action: pb::Action::Add.into(),
                parent_id: case.to_owned(),
                child_epcs: numbers
                    .map(|n| format!("urn:epc:id:sgtin:4012345.011111.S{n}"))
                    .collect(),
                ..Default::default()
            },
        )),
        ..Default::default()
    }
}

async fn capture_numbered(app: &TestApp, numbers: std::ops::Range<u32>) {
    let numbers: Vec<u32> = numbers.collect();
    for chunk in numbers.chunks(500) {
        let results = app
            .capture_events(chunk.iter().copied().map(inspected).collect())
            .await;
        assert!(
            results
                .iter()
                .all(|r| r.outcome == pb::CaptureOutcome::Accepted as i32),
            "every event is accepted"
        );
    }
}

/// `(sequence, stored payload)` of every event, read straight from the database.
async fn stored_payloads(db: &DatabaseConnection) -> Vec<(i64, Vec<u8>)> {
    db.query_all_raw(Statement::from_string(
        db.get_database_backend(),
        "SELECT sequence, payload FROM capture_events ORDER BY sequence",
    ))
    .await
    .expect("payloads")
    .iter()
    .map(|row| {
        (
            row.try_get("", "sequence").expect("sequence"),
            row.try_get("", "payload").expect("payload"),
        )
    })
    .collect()
}

/// Every column of every event row but the payload, as text, in sequence order.
async fn event_columns(db: &DatabaseConnection) -> Vec<Vec<Option<String>>> {
    let columns = [
        "event_id",
        "event_type",
        "biz_step",
        "disposition",
        "read_point",
        "biz_location",
        "declares",
        "chain_hash",
    ];
    let sql = format!(
        "SELECT sequence, {} FROM capture_events ORDER BY sequence",
        columns.join(", ")
    );
    db.query_all_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .expect("rows")
        .iter()
        .map(|row| {
            let sequence: i64 = row.try_get("", "sequence").expect("sequence");
            std::iter::once(Some(sequence.to_string()))
                .chain(columns.iter().map(|c| row.try_get("", c).expect("column")))
                .collect()
        })
        .collect()
}

/// The zstd dictionary id a stored payload's frame names, if it is a frame with one.
fn dictionary_of(stored: &[u8]) -> Option<u32> {
    // Frame header: magic, descriptor, [window], dictionary id (0, 1, 2 or 4 bytes).
    if !stored.starts_with(&ZSTD_MAGIC) {
        return None;
    }
    let descriptor = stored[4];
    let id_bytes = [0, 1, 2, 4][usize::from(descriptor & 0b11)];
    let single_segment = descriptor & 0b10_0000 != 0;
    let start = 5 + usize::from(!single_segment);
    let id = stored[start..start + id_bytes]
        .iter()
        .rev()
        .fold(0u32, |id, byte| (id << 8) | u32::from(*byte));
    (id != 0).then_some(id)
}

/// Whether the store holds `count` payloads, all compressed under the same dictionary.
fn all_under_one_dictionary(rows: &[(i64, Vec<u8>)], count: usize) -> bool {
    let dictionaries: std::collections::HashSet<_> = rows
        .iter()
        .map(|(_, stored)| dictionary_of(stored))
        .collect();
    rows.len() == count && dictionaries.len() == 1 && !dictionaries.contains(&None)
}

/// Polls `check` on the store until it holds, for up to 30 s.
async fn eventually(
    db: &DatabaseConnection,
    what: &str,
    check: impl Fn(&[(i64, Vec<u8>)]) -> bool,
) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if check(&stored_payloads(db).await) {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The first 1,000 stored events (one page at its largest).
async fn first_events(app: &TestApp) -> Vec<pb::StoredEvent> {
    app.capture
        .clone()
        .query_events(pb::QueryEventsRequest {
            filter: None,
            page: Some(pb::PageRequest {
                page_size: 1000,
                page_token: String::new(),
            }),
        })
        .await
        .expect("query")
        .into_inner()
        .events
}

/// Every `(child, parent, sequence)` placement, by identifier.
async fn placements(db: &DatabaseConnection) -> Vec<(String, String, i64)> {
    db.query_all_raw(Statement::from_string(
        db.get_database_backend(),
        "SELECT c.value AS child, p.value AS parent, pl.sequence AS sequence \
         FROM capture_child_placements pl \
         JOIN capture_identifiers c ON c.id = pl.child \
         JOIN capture_identifiers p ON p.id = pl.parent ORDER BY c.value"
            .to_owned(),
    ))
    .await
    .expect("placements")
    .iter()
    .map(|row| {
        (
            row.try_get("", "child").expect("child"),
            row.try_get("", "parent").expect("parent"),
            row.try_get("", "sequence").expect("sequence"),
        )
    })
    .collect()
}

/// The stored events naming `epc` in their epcList.
async fn events_naming(app: &TestApp, epc: &str) -> Vec<pb::StoredEvent> {
    app.capture
        .clone()
        .query_events(pb::QueryEventsRequest {
            filter: Some(pb::EventFilter {
                match_epcs: vec![epc.to_owned()],
                ..Default::default()
            }),
            page: None,
        })
        .await
        .expect("query")
        .into_inner()
        .events
}

async fn intact(app: &TestApp) -> bool {
    let report = app
        .capture
        .clone()
        .verify_integrity(pb::VerifyIntegrityRequest {})
        .await
        .expect("verified")
        .into_inner();
    report.intact
}

#[tokio::test]
async fn payloads_are_compressed_with_a_dictionary_the_store_trains_on_its_events() {
    let app = TestApp::spawn().await.expect("suite starts");
    let db = Database::connect(app.database_url()).await.expect("db");
    capture_numbered(&app, 0..TRAINING_EVENTS + 100).await;
    eventually(
        &db,
        "every payload compressed under one dictionary",
        |rows| all_under_one_dictionary(rows, (TRAINING_EVENTS + 100) as usize),
    )
    .await;
    let rows = stored_payloads(&db).await;
    let dictionary = dictionary_of(&rows[0].1).expect("a dictionary");
    // The progress is kept, so a restarted process does not read every payload again.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let progress = db
            .query_one_raw(Statement::from_string(
                db.get_database_backend(),
                "SELECT dictionary, done_through FROM capture_compaction",
            ))
            .await
            .expect("progress");
        let progress = progress.map(|row| {
            (
                row.try_get::<i64>("", "dictionary").expect("dictionary"),
                row.try_get::<i64>("", "done_through")
                    .expect("done_through"),
            )
        });
        if progress.is_some_and(|(with, through)| {
            with == i64::from(dictionary) && through >= i64::from(TRAINING_EVENTS)
        }) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "progress {progress:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mean = rows.iter().map(|(_, p)| p.len()).sum::<usize>() / rows.len();
    assert!(mean < 150, "about 75 bytes a payload, not {mean}");

    let first = app
        .capture
        .clone()
        .get_event(pb::GetEventRequest {
            event_id: inspected(0).event_id,
        })
        .await
        .expect("the first event reads back")
        .into_inner();
    let event = first.event.expect("event").event.expect("body");
    assert_eq!(event.event_id, inspected(0).event_id);
    assert_eq!(event.disposition, "non_conformant");
    let read = first_events(&app).await;
    assert_eq!(read.len(), 1000);
    let read_back = |n: usize| read[n].event.as_ref().map(|e| e.event_id.clone());
    assert!((0..1000).all(|n| read_back(n) == Some(inspected(n as u32).event_id)));
    assert!(
        intact(&app).await,
        "the chain covers the text, not its compression"
    );
    drop(db);
    app.stop().await.expect("stops");
}

/// The genealogy history of `unit`, once the projection shows both of its events.
async fn unit_history(app: &TestApp, unit: &str) -> Vec<pb::HistoryEntry> {
    let mut genealogy = app.genealogy.clone();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let entries = genealogy
            .history(pb::HistoryRequest {
                id: unit.to_owned(),
                page: None,
            })
            .await
            .expect("history")
            .into_inner()
            .entries;
        if entries.len() == 2 {
            return entries;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "genealogy shows {} events of {unit}",
            entries.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Puts genealogy back into the layout before `m0005`: on PostgreSQL, history as rows
/// rather than each event's `touched` array (SQLite kept its rows).
async fn revert_to_history_rows(db: &DatabaseConnection) {
    let backend = db.get_database_backend();
    let mut statements =
        vec!["DELETE FROM genealogy_migrations WHERE version = 'm0005_history_in_events'"];
    if backend == sea_orm::DbBackend::Postgres {
        statements.extend([
            "CREATE TABLE genealogy_history (node bigint NOT NULL, sequence bigint NOT NULL, \
             PRIMARY KEY (node, sequence))",
            "INSERT INTO genealogy_history (node, sequence) \
             SELECT t.node, e.sequence FROM genealogy_events e, unnest(e.touched) AS t(node)",
            "CREATE INDEX genealogy_history_sequence ON genealogy_history (sequence)",
            "ALTER TABLE genealogy_events DROP COLUMN touched",
        ]);
    }
    for sql in statements {
        db.execute_raw(Statement::from_string(backend, sql.to_owned()))
            .await
            .expect("as before");
    }
}

/// Puts a store back into the layout before placements by number, `m0013` not applied.
async fn revert_to_spelled_out_placements(db: &DatabaseConnection) {
    let backend = db.get_database_backend();
    for sql in [
        "CREATE TABLE capture_placements (child text PRIMARY KEY, parent text NOT NULL, \
         event_id text NOT NULL, sequence bigint NOT NULL)",
        "INSERT INTO capture_placements (child, parent, event_id, sequence) \
         SELECT c.value, p.value, e.event_id, pl.sequence FROM capture_child_placements pl \
         JOIN capture_identifiers c ON c.id = pl.child \
         JOIN capture_identifiers p ON p.id = pl.parent \
         JOIN capture_events e ON e.sequence = pl.sequence",
        "DROP TABLE capture_child_placements",
        "DELETE FROM capture_migrations WHERE version = 'm0013_capture_placement_numbers'",
    ] {
        db.execute_raw(Statement::from_string(backend, sql.to_owned()))
            .await
            .expect("as before");
    }
}

/// Puts a store back into the layout before identifier numbers: index rows that spell
/// their identifiers out, `m0012` not applied.
async fn revert_to_spelled_out_identifiers(db: &DatabaseConnection) {
    let backend = db.get_database_backend();
    let id = match backend {
        sea_orm::DbBackend::Postgres => "bigserial PRIMARY KEY",
        _ => "INTEGER PRIMARY KEY AUTOINCREMENT",
    };
    // PostgreSQL keeps the index in the events since `m0017`, which goes back too.
    let (index_rows, drop_index) = match backend {
        sea_orm::DbBackend::Postgres => (
            "SELECT e.sequence, (c % 16)::smallint AS role, c / 16 AS identifier \
             FROM capture_events e, unnest(e.identifiers) AS c",
            "ALTER TABLE capture_events DROP COLUMN identifiers",
        ),
        _ => (
            "SELECT sequence, role, identifier FROM capture_identifier_index",
            "DROP TABLE capture_identifier_index",
        ),
    };
    for sql in [
        format!(
            "CREATE TABLE capture_event_keys (id {id}, sequence bigint NOT NULL, \
             role smallint NOT NULL, value text NOT NULL)"
        ),
        format!(
            "INSERT INTO capture_event_keys (sequence, role, value) \
             SELECT k.sequence, k.role, i.value FROM ({index_rows}) k \
             JOIN capture_identifiers i ON i.id = k.identifier"
        ),
        "CREATE INDEX capture_event_keys_value ON capture_event_keys (value, role, sequence)"
            .to_owned(),
        drop_index.to_owned(),
        "DROP TABLE capture_identifiers".to_owned(),
        "DELETE FROM capture_migrations WHERE version IN \
         ('m0012_capture_identifier_numbers', 'm0017_capture_identifiers_in_events')"
            .to_owned(),
    ] {
        db.execute_raw(Statement::from_string(backend, sql))
            .await
            .expect("as before");
    }
}

/// Puts a store back into the layout before compression: payloads as text (a `text`
/// column on PostgreSQL), no dictionaries or compaction progress, `m0011` and `m0014` not
/// applied.
async fn revert_to_text_payloads(db: &DatabaseConnection) {
    let backend = db.get_database_backend();
    let run = |sql: &str| Statement::from_string(backend, sql.to_owned());
    let texts: Vec<(i64, String)> = stored_payloads(db)
        .await
        .into_iter()
        .map(|(sequence, stored)| {
            let text = zstd::decode_all(stored.as_slice()).expect("a dictionary-less frame");
            (sequence, String::from_utf8(text).expect("UTF-8"))
        })
        .collect();
    if backend == sea_orm::DbBackend::Postgres {
        db.execute_raw(run(
            "ALTER TABLE capture_events ALTER COLUMN payload TYPE text USING ''",
        ))
        .await
        .expect("a text column again");
    }
    for (sequence, text) in texts {
        let sql = match backend {
            sea_orm::DbBackend::Postgres => {
                "UPDATE capture_events SET payload = $1 WHERE sequence = $2"
            }
            _ => "UPDATE capture_events SET payload = ? WHERE sequence = ?",
        };
        db.execute_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [text.into(), sequence.into()],
        ))
        .await
        .expect("text payload");
    }
    for sql in [
        "DROP TABLE capture_dictionaries",
        "DROP TABLE capture_compaction",
        "DELETE FROM capture_migrations WHERE version IN \
         ('m0011_capture_compressed_payloads', 'm0014_capture_compaction_progress')",
    ] {
        db.execute_raw(run(sql)).await.expect("as before");
    }
}

#[tokio::test]
async fn a_store_of_the_layout_before_is_converted_keeping_events_links_and_columns() {
    let app = TestApp::spawn().await.expect("suite starts");
    capture_numbered(&app, 0..120).await;
    let cases = app
        .capture_events(vec![
            packed("urn:epc:id:sscc:4012345.0000000001", 0..10),
            packed("urn:epc:id:sscc:4012345.0000000002", 10..20),
        ])
        .await;
    assert!(
        cases
            .iter()
            .all(|r| r.outcome == pb::CaptureOutcome::Accepted as i32)
    );
    let before = first_events(&app).await;
    let db = Database::connect(app.database_url()).await.expect("db");
    let columns = event_columns(&db).await;
    let unit = "urn:epc:id:sgtin:4012345.011111.S17";
    let naming_unit = events_naming(&app, unit).await;
    assert_eq!(naming_unit.len(), 2, "inspected, then packed");
    let placed = placements(&db).await;
    assert!(!placed.is_empty(), "the plant packs");
    let unit_history_before = unit_history(&app, unit).await;
    revert_to_history_rows(&db).await;
    revert_to_spelled_out_placements(&db).await;
    revert_to_spelled_out_identifiers(&db).await;
    revert_to_text_payloads(&db).await;
    let texts = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT COUNT(*) AS n FROM capture_events WHERE payload LIKE '{%'",
        ))
        .await
        .expect("count")
        .expect("a row");
    assert_eq!(
        texts.try_get::<i64>("", "n").expect("n"),
        122,
        "the old layout keeps the text"
    );
    drop(db);

    // A new process migrates the store and converts it while it serves.
    let replica = app.spawn_replica().await.expect("migrates");
    let db = Database::connect(app.database_url()).await.expect("db");
    eventually(&db, "every payload compressed", |rows| {
        rows.iter()
            .all(|(_, stored)| stored.starts_with(&ZSTD_MAGIC))
    })
    .await;
    assert_eq!(
        event_columns(&db).await,
        columns,
        "links and query columns kept"
    );
    assert_eq!(
        first_events(&replica).await,
        before,
        "every event reads back the same"
    );
    assert_eq!(
        events_naming(&replica, unit).await,
        naming_unit,
        "and is found by its identifiers"
    );
    assert_eq!(
        placements(&db).await,
        placed,
        "every child stays in its parent"
    );
    assert_eq!(
        unit_history(&replica, unit).await,
        unit_history_before,
        "genealogy's history kept"
    );
    assert!(intact(&replica).await);
    drop(db);
    replica.stop().await.expect("stops");
    app.stop().await.expect("stops");
}

/// Two replicas reaching the training point together: each may train a dictionary, the
/// store keeps one, and every payload ends up compressed under it.
#[tokio::test]
async fn replicas_training_at_once_keep_one_dictionary() {
    let app = TestApp::spawn().await.expect("suite starts");
    let replica = app.spawn_replica().await.expect("replica starts");
    let db = Database::connect(app.database_url()).await.expect("db");
    let half = TRAINING_EVENTS / 2 + 50;
    tokio::join!(
        capture_numbered(&app, 0..half),
        capture_numbered(&replica, half..2 * half)
    );
    eventually(
        &db,
        "every payload compressed under one dictionary",
        |rows| all_under_one_dictionary(rows, (2 * half) as usize),
    )
    .await;
    let kept = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT COUNT(*) AS kept FROM capture_dictionaries",
        ))
        .await
        .expect("count")
        .map(|row| row.try_get::<i64>("", "kept").expect("kept"));
    assert_eq!(kept, Some(1), "one dictionary stored");
    assert!(intact(&app).await);
    drop(db);
    replica.stop().await.expect("replica stops");
    app.stop().await.expect("stops");
}
