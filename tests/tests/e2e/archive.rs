//! `tracery archive export|drop|import` against the real suite: closed months go out into
//! files and back without changing an event, a sequence or a chain link; genealogy answers
//! the same while they are out; bad archives and bad requests change nothing.
//!
//! The suite's clock is shifted back while the plant's early events are captured, so they
//! fall in months that have ended.

use std::{collections::BTreeSet, path::Path};

use chrono::{Datelike, TimeDelta, TimeZone, Utc};
use tracery::cli::{
    Connection, Failure,
    archive::{self, DropArgs, ExportArgs, ImportArgs},
};
use tracery_e2e::TestApp;
use tracery_proto::v1::{self as pb, epcis_event::Body};
use tracery_runtime::error::ErrorKind;

const LOT: &str = "urn:epc:class:lgtin:4012345.000002.LOT-7";
const CASE: &str = "urn:epc:id:sscc:4012345.0000000301";

fn unit(n: u32) -> String {
    format!("urn:epc:id:sgtin:4012345.000004.{n}")
}

fn units() -> Vec<String> {
    (1..=3).map(unit).collect()
}

fn event(app: &TestApp, id: u32, biz_step: &str, body: Body) -> pb::EpcisEvent {
    let time = app.clock.now() - TimeDelta::minutes(1);
    pb::EpcisEvent {
        event_id: format!("urn:uuid:00000000-0000-4000-8000-7000000000{id:02}"),
        event_time: Some(prost_types::Timestamp {
            seconds: time.timestamp(),
            nanos: 0,
        }),
        event_time_zone_offset: "+01:00".into(),
        biz_step: biz_step.into(),
        body: Some(body),
        ..Default::default()
    }
}

async fn capture(app: &TestApp, events: Vec<pb::EpcisEvent>) -> i64 {
    let results = app.capture_events(events).await;
    for result in &results {
        assert_eq!(
            result.outcome,
            pb::CaptureOutcome::Accepted as i32,
            "{result:?}"
        );
    }
    results.iter().map(|r| r.sequence).max().unwrap_or_default()
}

/// A lot made into three units 100 days ago, the units packed 45 days ago (both in months
/// that have ended, whatever today is), and the case shipped today.
async fn plant(app: &TestApp) -> i64 {
    app.clock.shift(TimeDelta::days(-100));
    capture(
        app,
        vec![event(
            app,
            1,
            "commissioning",
            Body::TransformationEvent(pb::TransformationEvent {
                input_quantities: vec![pb::QuantityElement {
                    epc_class: LOT.into(),
                    quantity: Some(5.0),
                    uom: "KGM".into(),
                }],
                output_epcs: units(),
                ..Default::default()
            }),
        )],
    )
    .await;
    app.clock.shift(TimeDelta::days(-45));
    let packing = |id, unit: String| {
        event(
            app,
            id,
            "packing",
            Body::AggregationEvent(pb::AggregationEvent {
                action: pb::Action::Add.into(),
                parent_id: CASE.into(),
                child_epcs: vec![unit],
                child_quantities: Vec::new(),
            }),
        )
    };
    capture(app, vec![packing(2, unit(1)), packing(3, unit(2))]).await;
    capture(app, vec![packing(4, unit(3))]).await;
    app.clock.shift(TimeDelta::zero());
    let last = capture(
        app,
        vec![event(
            app,
            5,
            "shipping",
            Body::ObjectEvent(pb::ObjectEvent {
                action: pb::Action::Observe.into(),
                epcs: vec![CASE.into()],
                ..Default::default()
            }),
        )],
    )
    .await;
    app.await_genealogy(last).await;
    last
}

fn connection(app: &TestApp) -> Connection {
    Connection {
        server: format!("http://{}", app.grpc_addr),
        token: None,
        json: false,
    }
}

/// The first of this month: every month before it has ended.
fn this_month() -> String {
    let now = Utc::now();
    format!("{:04}-{:02}-01", now.year(), now.month())
}

async fn export(app: &TestApp, out: &Path, before: &str) -> Result<(), Failure> {
    archive::export(ExportArgs {
        before: before.to_owned(),
        out: out.to_owned(),
        connection: connection(app),
    })
    .await
}

async fn drop_months(app: &TestApp, archive_dir: &Path) -> Result<(), Failure> {
    archive::drop_months(DropArgs {
        before: this_month(),
        archive: archive_dir.to_owned(),
        connection: connection(app),
    })
    .await
}

async fn import(app: &TestApp, archive_dir: &Path) -> Result<(), Failure> {
    archive::import(ImportArgs {
        archive: archive_dir.to_owned(),
        connection: connection(app),
    })
    .await
}

/// Every stored event: sequence and the event as the suite returns it.
async fn stored(app: &TestApp) -> Vec<(i64, pb::EpcisEvent)> {
    app.capture
        .clone()
        .query_events(pb::QueryEventsRequest::default())
        .await
        .expect("query")
        .into_inner()
        .events
        .into_iter()
        .map(|stored| (stored.sequence, stored.event.expect("an event")))
        .collect()
}

/// What genealogy answers about the plant: the lot forward, a unit backward, the recall.
async fn genealogy_answers(
    app: &TestApp,
) -> (BTreeSet<String>, BTreeSet<String>, BTreeSet<String>) {
    let mut genealogy = app.genealogy.clone();
    let ids = |nodes: Vec<pb::Node>| nodes.into_iter().map(|n| n.id).collect();
    let forward = genealogy
        .trace_forward(pb::TraceRequest {
            id: LOT.into(),
            ..Default::default()
        })
        .await
        .expect("forward")
        .into_inner();
    let backward = genealogy
        .trace_backward(pb::TraceRequest {
            id: unit(2),
            ..Default::default()
        })
        .await
        .expect("backward")
        .into_inner();
    let recall = genealogy
        .recall_scope(pb::RecallScopeRequest {
            ids: vec![LOT.into()],
            ..Default::default()
        })
        .await
        .expect("recall")
        .into_inner();
    (
        ids(forward.nodes),
        ids(backward.nodes),
        recall.items.into_iter().map(|i| i.id).collect(),
    )
}

fn month_folders(dir: &Path) -> Vec<String> {
    let mut months: Vec<String> = std::fs::read_dir(dir)
        .expect("archive folder")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    months.sort();
    months
}

#[tokio::test]
async fn export_drop_import_gives_back_the_same_events_sequences_and_chain() {
    let app = TestApp::spawn().await.expect("suite starts");
    plant(&app).await;
    let before = stored(&app).await;
    let answers = genealogy_answers(&app).await;
    assert!(
        answers.0.len() >= 4,
        "the lot reaches its units: {answers:?}"
    );
    let dir = tempfile::tempdir().expect("temp dir");

    export(&app, dir.path(), &this_month())
        .await
        .expect("exported");
    let months = month_folders(dir.path());
    assert_eq!(months.len(), 2, "two closed months: {months:?}");
    drop_months(&app, dir.path()).await.expect("dropped");

    let left = stored(&app).await;
    assert_eq!(left.len(), 1, "only this month's shipping stays: {left:?}");
    let answer = app
        .capture
        .clone()
        .get_event(pb::GetEventRequest {
            event_id: before[0].1.event_id.clone(),
        })
        .await
        .expect_err("archived");
    assert_eq!(answer.code(), tonic::Code::NotFound);
    let file = format!("{}/events-0001.jsonld.zst", months[0]);
    assert!(
        answer.message().contains(&format!("archived in {file}")),
        "{}",
        answer.message()
    );
    let rest = reqwest::get(format!(
        "http://{}/events/{}",
        app.http_addr,
        tracery_e2e::urlencode(&before[0].1.event_id)
    ))
    .await
    .expect("REST answers");
    assert_eq!(rest.status(), reqwest::StatusCode::NOT_FOUND);
    let body = rest.text().await.expect("body");
    assert!(body.contains(&format!("archived in {file}")), "{body}");
    assert_eq!(
        genealogy_answers(&app).await,
        answers,
        "genealogy answers the same across the dropped months"
    );
    let report = app.verify_integrity().await;
    assert!(
        report.intact,
        "the chain verifies from the archived end link: {report:?}"
    );

    import(&app, dir.path()).await.expect("imported");
    assert_eq!(
        stored(&app).await,
        before,
        "the same events at the same sequences"
    );
    let report = app.verify_integrity().await;
    assert!(report.intact, "{report:?}");
    assert_eq!(report.checked, before.len() as i64);
    app.capture
        .clone()
        .get_event(pb::GetEventRequest {
            event_id: before[0].1.event_id.clone(),
        })
        .await
        .expect("back in the store");
    app.stop().await.expect("stops");
}

/// More events than one restore batch (5,000), so batches are made into rows and written
/// while the next ones arrive: every event comes back, each in its place in the chain.
#[tokio::test]
async fn a_month_of_many_restore_batches_comes_back_whole() {
    const EVENTS: usize = 12_345;
    let app = TestApp::spawn().await.expect("suite starts");
    app.clock.shift(TimeDelta::days(-45));
    let observation = |n: usize| pb::EpcisEvent {
        event_id: format!("urn:uuid:00000000-0000-4000-8000-8{n:011}"),
        ..event(
            &app,
            0,
            "inspecting",
            Body::ObjectEvent(pb::ObjectEvent {
                action: pb::Action::Observe.into(),
                epcs: vec![format!("urn:epc:id:sgtin:4012345.000004.M{n}")],
                ..Default::default()
            }),
        )
    };
    let events: Vec<pb::EpcisEvent> = (0..EVENTS).map(observation).collect();
    for batch in events.chunks(1_000) {
        capture(&app, batch.to_vec()).await;
    }
    app.clock.shift(TimeDelta::zero());
    let before = app.verify_integrity().await;
    assert_eq!(before.checked, EVENTS as i64, "{before:?}");
    let dir = tempfile::tempdir().expect("temp dir");
    export(&app, dir.path(), &this_month())
        .await
        .expect("exported");
    drop_months(&app, dir.path()).await.expect("dropped");

    import(&app, dir.path()).await.expect("imported");
    let after = app.verify_integrity().await;
    assert!(after.intact, "{after:?}");
    assert_eq!(after.checked, EVENTS as i64, "every event is back");
    app.stop().await.expect("stops");
}

/// A suite with the plant captured and its closed months exported: the suite, its stored
/// events, and the archive folder.
async fn exported_plant() -> (TestApp, Vec<(i64, pb::EpcisEvent)>, tempfile::TempDir) {
    let app = TestApp::spawn().await.expect("suite starts");
    plant(&app).await;
    let before = stored(&app).await;
    let dir = tempfile::tempdir().expect("temp dir");
    export(&app, dir.path(), &this_month())
        .await
        .expect("exported");
    (app, before, dir)
}

fn first_file(dir: &Path) -> std::path::PathBuf {
    dir.join(&month_folders(dir)[0])
        .join("events-0001.jsonld.zst")
}

#[tokio::test]
async fn a_damaged_or_missing_archive_file_is_refused_by_name_and_nothing_is_dropped() {
    let (app, before, dir) = exported_plant().await;
    let file = first_file(dir.path());
    let original = std::fs::read(&file).expect("archive file");

    let mut damaged = original.clone();
    let middle = damaged.len() / 2;
    damaged[middle] ^= 0x01;
    std::fs::write(&file, &damaged).expect("damaged");
    let refused = drop_months(&app, dir.path())
        .await
        .expect_err("damaged file refused");
    assert_eq!(refused.kind, ErrorKind::InvalidArgument);
    assert!(
        refused.message.contains(&file.display().to_string())
            && refused.message.contains("SHA-256"),
        "{}",
        refused.message
    );
    assert_eq!(stored(&app).await, before, "nothing dropped");

    std::fs::remove_file(&file).expect("removed");
    let refused = drop_months(&app, dir.path())
        .await
        .expect_err("missing file refused");
    assert!(
        refused.message.contains(&file.display().to_string()),
        "{}",
        refused.message
    );
    assert_eq!(stored(&app).await, before, "nothing dropped");
    app.stop().await.expect("stops");
}

#[tokio::test]
async fn drop_refuses_months_without_an_export() {
    let app = TestApp::spawn().await.expect("suite starts");
    plant(&app).await;
    let before = stored(&app).await;
    let empty = tempfile::tempdir().expect("temp dir");
    let refused = drop_months(&app, empty.path())
        .await
        .expect_err("no export");
    assert_eq!(refused.kind, ErrorKind::FailedPrecondition);
    assert!(refused.message.contains("no export"), "{}", refused.message);

    // An export of only the older month leaves the newer one without one.
    let dir = tempfile::tempdir().expect("temp dir");
    export(&app, dir.path(), &this_month())
        .await
        .expect("exported");
    let newer = dir.path().join(&month_folders(dir.path())[1]);
    std::fs::remove_file(newer.join("manifest.json")).expect("manifest removed");
    let refused = drop_months(&app, dir.path())
        .await
        .expect_err("partial export");
    assert_eq!(refused.kind, ErrorKind::FailedPrecondition);
    assert_eq!(stored(&app).await, before, "nothing dropped");
    app.stop().await.expect("stops");
}

#[tokio::test]
async fn export_refuses_a_folder_it_cannot_write_and_a_before_that_is_no_past_month_boundary() {
    let app = TestApp::spawn().await.expect("suite starts");
    plant(&app).await;
    let dir = tempfile::tempdir().expect("temp dir");
    // A path under a regular file: not writable for anyone, root included.
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"").expect("file");
    let refused = export(&app, &file.join("archive"), &this_month())
        .await
        .expect_err("unwritable");
    assert_eq!(refused.kind, ErrorKind::InvalidArgument);
    assert!(
        refused.message.contains("cannot write"),
        "{}",
        refused.message
    );

    let out = dir.path().join("archive");
    let mid_month = format!("{}15", &this_month()[..8]);
    let refused = export(&app, &out, &mid_month).await.expect_err("mid-month");
    assert_eq!(refused.kind, ErrorKind::InvalidArgument);
    assert!(
        refused.message.contains("month boundary"),
        "{}",
        refused.message
    );

    let next_year = Utc
        .with_ymd_and_hms(Utc::now().year() + 1, 1, 1, 0, 0, 0)
        .single()
        .expect("a valid time")
        .format("%Y-%m-%d")
        .to_string();
    let refused = export(&app, &out, &next_year).await.expect_err("future");
    assert_eq!(refused.kind, ErrorKind::InvalidArgument);
    assert!(refused.message.contains("future"), "{}", refused.message);
    assert!(month_folders(&out).is_empty(), "nothing written");
    app.stop().await.expect("stops");
}

#[tokio::test]
async fn an_archive_from_another_deployment_does_not_join_the_chain_and_changes_nothing() {
    let ours = TestApp::spawn().await.expect("suite starts");
    let theirs = TestApp::spawn().await.expect("another deployment starts");
    plant(&ours).await;
    plant(&theirs).await;
    let dir = tempfile::tempdir().expect("temp dir");
    export(&theirs, dir.path(), &this_month())
        .await
        .expect("exported");
    drop_months(&theirs, dir.path())
        .await
        .expect("dropped there");

    // Our store dropped the same months, from its own chain.
    let own = tempfile::tempdir().expect("temp dir");
    export(&ours, own.path(), &this_month())
        .await
        .expect("exported");
    drop_months(&ours, own.path()).await.expect("dropped here");
    let before = stored(&ours).await;

    let refused = import(&ours, dir.path()).await.expect_err("another chain");
    assert_eq!(refused.kind, ErrorKind::FailedPrecondition);
    assert!(
        refused.message.contains("does not join"),
        "{}",
        refused.message
    );
    assert_eq!(stored(&ours).await, before, "nothing imported");
    assert!(ours.verify_integrity().await.intact);
    theirs.stop().await.expect("stops");
    ours.stop().await.expect("stops");
}

/// The exported documents, decompressed, against GS1's EPCIS 2.0 JSON schema (Python's
/// `jsonschema`, an independent reading of it).
#[tokio::test]
async fn exported_documents_are_valid_epcis_2_json_ld() {
    let Some(shared) = tracery_e2e::shared_fixtures() else {
        return;
    };
    if std::process::Command::new("python3")
        .args(["-c", "import jsonschema"])
        .status()
        .map(|s| !s.success())
        .unwrap_or(true)
    {
        assert!(
            std::env::var("TRACERY_REQUIRE_FIXTURES").as_deref() != Ok("1"),
            "python3 with jsonschema is needed to check the archive documents"
        );
        eprintln!("SKIPPED: python3 jsonschema is not installed");
        return;
    }
    let (app, _, dir) = exported_plant().await;
    let plain = tempfile::tempdir().expect("temp dir");
    for month in month_folders(dir.path()) {
        let compressed = std::fs::read(dir.path().join(&month).join("events-0001.jsonld.zst"))
            .expect("document");
        let text = zstd::decode_all(compressed.as_slice()).expect("zstd");
        std::fs::write(plain.path().join(format!("{month}.jsonld")), text).expect("written");
    }
    let checked = std::process::Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/python/check_plant_documents.py"
        ))
        .arg(shared.join("epcis/schema/EPCIS-JSON-Schema.json"))
        .arg(plain.path())
        .status()
        .expect("python3 runs");
    assert!(checked.success(), "the archive documents are schema-valid");
    app.stop().await.expect("stops");
}

/// An archive edited with care (the event changed, the file's SHA-256 in the manifest
/// recomputed) passes the client's checks; the suite's own chain still refuses it.
#[tokio::test]
async fn an_edited_archive_with_a_recomputed_digest_is_refused_by_the_chain() {
    use sha2::Digest as _;
    let (app, before, dir) = exported_plant().await;
    let file = first_file(dir.path());
    let text = zstd::decode_all(std::fs::read(&file).expect("file").as_slice()).expect("zstd");
    let edited = String::from_utf8(text)
        .expect("text")
        .replace("commissioning", "decommissioning");
    let compressed = zstd::encode_all(edited.as_bytes(), 3).expect("zstd");
    std::fs::write(&file, &compressed).expect("written");
    let manifest_path = file.with_file_name("manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&manifest_path).expect("manifest")).expect("json");
    let digest: String = sha2::Sha256::digest(&compressed)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    manifest["files"][0]["sha256"] = digest.into();
    std::fs::write(&manifest_path, manifest.to_string()).expect("manifest written");

    let refused = drop_months(&app, dir.path())
        .await
        .expect_err("edited archive");
    assert_eq!(refused.kind, ErrorKind::FailedPrecondition);
    assert!(
        refused.message.contains("does not join"),
        "{}",
        refused.message
    );
    assert_eq!(stored(&app).await, before, "nothing dropped");
    app.stop().await.expect("stops");
}

/// Two replicas dropping the same months at once: one drops them, the other is refused,
/// and importing on both at once puts every event back once.
#[tokio::test]
async fn replicas_racing_to_drop_or_import_a_month_keep_every_event_once() {
    let app = TestApp::spawn().await.expect("suite starts");
    let replica = app.spawn_replica().await.expect("replica starts");
    plant(&app).await;
    let before = stored(&app).await;
    let dir = tempfile::tempdir().expect("temp dir");
    export(&app, dir.path(), &this_month())
        .await
        .expect("exported");

    let (first, second) = tokio::join!(
        drop_months(&app, dir.path()),
        drop_months(&replica, dir.path())
    );
    assert!(
        first.is_ok() != second.is_ok(),
        "exactly one drop wins: {first:?} / {second:?}"
    );
    assert_eq!(stored(&app).await.len(), 1);
    assert!(app.verify_integrity().await.intact);

    let (first, second) = tokio::join!(import(&app, dir.path()), import(&replica, dir.path()));
    assert!(first.is_ok() || second.is_ok(), "{first:?} / {second:?}");
    assert_eq!(stored(&app).await, before, "every event back, once");
    let report = app.verify_integrity().await;
    assert!(report.intact, "{report:?}");
    replica.stop().await.expect("replica stops");
    app.stop().await.expect("stops");
}
