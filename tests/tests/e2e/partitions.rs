//! Monthly partitions of the event table on PostgreSQL: events land in the partition of
//! the month they were recorded in, the months ahead exist before they begin, and a query
//! by record time reads only its months. On SQLite (one file) these tests have nothing to
//! check and say so.

use std::time::Duration;

use chrono::{DateTime, Datelike, Months, NaiveDate, TimeDelta, Utc};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement, TransactionTrait};
use tracery_e2e::TestApp;
use tracery_proto::v1::{self as pb, epcis_event::Body};

fn event(app: &TestApp, n: u32) -> pb::EpcisEvent {
    let time = app.clock.now() - TimeDelta::minutes(1);
    pb::EpcisEvent {
        event_id: format!("urn:uuid:00000000-0000-4000-8000-9000000000{n:02}"),
        event_time: Some(prost_types::Timestamp {
            seconds: time.timestamp(),
            nanos: 0,
        }),
        event_time_zone_offset: "+00:00".into(),
        body: Some(Body::ObjectEvent(pb::ObjectEvent {
            action: pb::Action::Observe.into(),
            epcs: vec![format!("urn:epc:id:sgtin:4012345.000004.{n}")],
            ..Default::default()
        })),
        ..Default::default()
    }
}

/// The suite's PostgreSQL database, or `None` (said) on SQLite.
async fn postgres(app: &TestApp) -> Option<DatabaseConnection> {
    if !app.database_url().starts_with("postgres") {
        eprintln!("SKIPPED: partitions are PostgreSQL's; this run is on SQLite");
        return None;
    }
    Some(
        Database::connect(app.database_url())
            .await
            .expect("database"),
    )
}

fn month_of(time: DateTime<Utc>) -> NaiveDate {
    NaiveDate::from_ymd_opt(time.year(), time.month(), 1).expect("a month")
}

fn partition(month: NaiveDate) -> String {
    format!("capture_events_{}", month.format("%Y_%m"))
}

async fn strings(db: &DatabaseConnection, sql: &str) -> Vec<String> {
    db.query_all_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .expect("catalog query")
        .into_iter()
        .map(|row| row.try_get_by_index::<String>(0).expect("text"))
        .collect()
}

/// A suite on PostgreSQL (`None` on SQLite) with events of two months: two 40 days ago,
/// one now. Also returns its database and the earlier month.
async fn two_month_store() -> Option<(TestApp, DatabaseConnection, NaiveDate)> {
    let app = TestApp::spawn().await.expect("suite starts");
    let Some(db) = postgres(&app).await else {
        app.stop().await.expect("stops");
        return None;
    };
    app.clock.shift(TimeDelta::days(-40));
    let earlier = month_of(app.clock.now());
    app.capture_events(vec![event(&app, 1), event(&app, 2)])
        .await;
    app.clock.shift(TimeDelta::zero());
    app.capture_events(vec![event(&app, 3)]).await;
    Some((app, db, earlier))
}

#[tokio::test]
async fn events_land_in_the_partition_of_their_record_month_and_months_ahead_exist() {
    let Some((app, db, earlier)) = two_month_store().await else {
        return;
    };
    let this_month = month_of(Utc::now());

    let holding = strings(
        &db,
        "SELECT tableoid::regclass::text FROM capture_events ORDER BY sequence",
    )
    .await;
    assert_eq!(
        holding,
        [
            partition(earlier),
            partition(earlier),
            partition(this_month)
        ],
    );
    let partitions = strings(
        &db,
        "SELECT inhrelid::regclass::text FROM pg_inherits \
         WHERE inhparent = 'capture_events'::regclass",
    )
    .await;
    for ahead in 1..=2 {
        let month = partition(this_month + Months::new(ahead));
        assert!(partitions.contains(&month), "{month} in {partitions:?}");
    }
    let report = app.verify_integrity().await;
    assert!(report.intact, "{report:?}");
    app.stop().await.expect("stops");
}

#[tokio::test]
async fn a_query_by_record_time_reads_only_the_months_it_names() {
    let Some((app, db, earlier)) = two_month_store().await else {
        return;
    };
    let this_month = month_of(Utc::now());

    // Whatever reads the earlier month now waits for this lock; a query that reads only
    // this month does not.
    let holder = db.begin().await.expect("transaction");
    holder
        .execute_unprepared(&format!(
            "LOCK TABLE {} IN ACCESS EXCLUSIVE MODE",
            partition(earlier)
        ))
        .await
        .expect("locked");
    let from = format!("{}T00:00:00Z", this_month.format("%Y-%m-%d"));
    let answer = tokio::time::timeout(
        Duration::from_secs(30),
        reqwest::get(format!(
            "http://{}/events?GE_recordTime={}",
            app.http_addr,
            tracery_e2e::urlencode(&from)
        )),
    )
    .await
    .expect("the query waited for the earlier month's partition, which it does not need")
    .expect("REST answers");
    assert_eq!(answer.status(), reqwest::StatusCode::OK);
    let body: serde_json::Value = answer.json().await.expect("JSON");
    let events = body
        .pointer("/epcisBody/queryResults/resultsBody/eventList")
        .and_then(serde_json::Value::as_array)
        .expect("an event list");
    assert_eq!(events.len(), 1, "only this month's event: {body}");
    holder.rollback().await.expect("released");
    app.stop().await.expect("stops");
}

async fn partition_rows(db: &DatabaseConnection, month: NaiveDate) -> Option<i64> {
    let table = partition(month);
    let exists = strings(
        db,
        &format!("SELECT coalesce(to_regclass('{table}')::text, '')"),
    )
    .await;
    if exists[0].is_empty() {
        return None;
    }
    let rows = strings(db, &format!("SELECT count(*)::text FROM {table}")).await;
    rows[0].parse().ok()
}

#[tokio::test]
async fn an_archived_month_goes_with_its_partition_and_comes_back_in_one() {
    use tracery::cli::{
        Connection,
        archive::{self, DropArgs, ExportArgs, ImportArgs},
    };
    let Some((app, db, earlier)) = two_month_store().await else {
        return;
    };
    let connection = || Connection {
        server: format!("http://{}", app.grpc_addr),
        token: None,
        json: false,
    };
    let before = month_of(Utc::now()).format("%Y-%m-%d").to_string();
    let dir = tempfile::tempdir().expect("temp dir");
    archive::export(ExportArgs {
        before: before.clone(),
        out: dir.path().to_owned(),
        connection: connection(),
    })
    .await
    .expect("exported");
    assert_eq!(partition_rows(&db, earlier).await, Some(2));

    archive::drop_months(DropArgs {
        before,
        archive: dir.path().to_owned(),
        connection: connection(),
    })
    .await
    .expect("dropped");
    assert_eq!(
        partition_rows(&db, earlier).await,
        None,
        "the partition went"
    );
    assert!(app.verify_integrity().await.intact);

    archive::import(ImportArgs {
        archive: dir.path().to_owned(),
        connection: connection(),
    })
    .await
    .expect("imported");
    assert_eq!(
        partition_rows(&db, earlier).await,
        Some(2),
        "back in its own"
    );
    assert_eq!(app.stored_events().await.len(), 3);
    assert!(app.verify_integrity().await.intact);
    app.stop().await.expect("stops");
}

/// A store from before partitioning keeps its rows where they are: the plain table
/// becomes the partition of everything up to the month after its newest row, its key
/// numbering goes on where it was, and the months after it get partitions of their own.
#[tokio::test]
async fn a_plain_table_becomes_partitioned_without_moving_its_rows() {
    use tracery_runtime::partitions::Monthly;
    let database = tracery_e2e::TestDatabase::create().await.expect("database");
    if !database.url().starts_with("postgres") {
        eprintln!("SKIPPED: partitions are PostgreSQL's; this run is on SQLite");
        return;
    }
    let db = Database::connect(database.url()).await.expect("connects");
    for sql in [
        "CREATE TABLE plain_events (sequence bigint GENERATED BY DEFAULT AS IDENTITY \
         PRIMARY KEY, event_id text NOT NULL UNIQUE, recorded timestamptz NOT NULL)",
        "CREATE INDEX plain_events_recorded ON plain_events (recorded)",
        "INSERT INTO plain_events (event_id, recorded) VALUES \
         ('a', '2026-10-31 23:59:59+00'), ('b', '2026-11-30 23:00:00-02')",
    ] {
        db.execute_unprepared(sql).await.expect(sql);
    }
    let table = Monthly {
        table: "plain_events",
        column: "recorded",
    };
    let indexes = [
        "CREATE INDEX plain_events_event_id ON plain_events (event_id)",
        "CREATE INDEX plain_events_recorded ON plain_events (recorded)",
    ];
    let now: DateTime<Utc> = "2026-12-05T12:00:00Z".parse().expect("a time");
    let txn = db.begin().await.expect("transaction");
    table
        .convert(&txn, "sequence", &indexes, now)
        .await
        .expect("converted");
    txn.commit().await.expect("committed");
    // Running again (a migration retried) finds it done.
    table
        .convert(&db, "sequence", &indexes, now)
        .await
        .expect("idempotent");

    db.execute_unprepared(
        "INSERT INTO plain_events (event_id, recorded) VALUES ('c', '2027-01-02 00:00:00+00')",
    )
    .await
    .expect("a row of a month ahead");
    let rows = strings(
        &db,
        "SELECT sequence || ' ' || event_id || ' ' || tableoid::regclass::text \
         FROM plain_events ORDER BY sequence",
    )
    .await;
    assert_eq!(
        rows,
        [
            "1 a plain_events_before",
            "2 b plain_events_before",
            "3 c plain_events_2027_01",
        ]
    );
    let partitions = strings(
        &db,
        "SELECT inhrelid::regclass::text FROM pg_inherits \
         WHERE inhparent = 'plain_events'::regclass ORDER BY 1",
    )
    .await;
    // The rows of 30 November at 23:00 -02:00 fell on 1 December (UTC): the partition from
    // before covers December, and the months ahead start in January.
    assert_eq!(
        partitions,
        [
            "plain_events_2027_01",
            "plain_events_2027_02",
            "plain_events_before"
        ]
    );
    db.close().await.expect("closed");
    database.drop_database().await.expect("dropped");
}
