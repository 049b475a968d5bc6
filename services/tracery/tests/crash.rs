//! Crash tests: the server process is killed with SIGKILL mid-work and started again.
//!
//! - Capture: every event acknowledged before the kill is there afterwards, none twice;
//!   the genealogy projection resumes from its cursor with every stored event once.
//! - Integration: a sync killed mid-page resumes at that page after the restart, without
//!   fetching an applied page again or storing a record twice; a posting killed after the
//!   ERP stored it but before its answer was recorded is not sent again.

use std::{collections::HashSet, process::Command, time::Duration};

use sea_orm::ConnectionTrait as _;
use tokio_stream::StreamExt as _;
use tonic::transport::Channel;
use tracery_e2e::{
    TestDatabase,
    erp_postings::Answer,
    erp_sites::{ERPNEXT_ITEMS, ErpSites},
    process::ServerProcess,
};
use tracery_proto::v1::{
    self as pb, capture_service_client::CaptureServiceClient,
    genealogy_service_client::GenealogyServiceClient,
    integration_service_client::IntegrationServiceClient,
};

/// `tracery serve` on `database_url`, in `dir` (with its `tracery.toml`, if the test wrote
/// one).
fn start(database_url: &str, dir: &std::path::Path) -> ServerProcess {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tracery"));
    command.arg("serve");
    let config = dir.join("tracery.toml");
    if config.exists() {
        command.arg("--config").arg(&config);
    }
    command
        .args(["--database-url", database_url])
        .current_dir(dir)
        .env("RUST_LOG", "warn");
    ServerProcess::start(command)
}

async fn connect(server: &ServerProcess) -> CaptureServiceClient<Channel> {
    for _ in 0..200 {
        if let Ok(client) = CaptureServiceClient::connect(server.grpc_url()).await {
            return client;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the server never listened on {}", server.grpc_url());
}

fn event(n: usize) -> pb::EpcisEvent {
    pb::EpcisEvent {
        event_id: format!("urn:uuid:00000000-0000-4000-8000-{n:012}"),
        event_time: Some(prost_types::Timestamp {
            seconds: 1_795_651_200 + n as i64,
            nanos: 0,
        }),
        event_time_zone_offset: "+01:00".to_owned(),
        biz_step: "receiving".to_owned(),
        body: Some(pb::epcis_event::Body::ObjectEvent(pb::ObjectEvent {
            action: pb::Action::Observe.into(),
            epcs: vec![format!("urn:epc:id:sgtin:4012345.011111.{n}")],
            ..Default::default()
        })),
        ..Default::default()
    }
}

const PER_BATCH: usize = 50;

#[tokio::test]
async fn acknowledged_events_survive_sigkill() {
    let database = TestDatabase::create().await.expect("database");
    let dir = tempfile::tempdir().expect("working directory");
    let mut server = start(database.url(), dir.path());
    let mut client = connect(&server).await;

    let (sender, receiver) = tokio::sync::mpsc::channel(64);
    let mut acks = client
        .capture_stream(tokio_stream::wrappers::ReceiverStream::new(receiver))
        .await
        .expect("stream opens")
        .into_inner();
    // Queue far more than will be acknowledged, so the kill lands mid-stream.
    for batch in 0..64 {
        let events = (batch * PER_BATCH..(batch + 1) * PER_BATCH)
            .map(event)
            .collect();
        sender
            .send(pb::CaptureStreamRequest {
                batch_id: batch.to_string(),
                events,
            })
            .await
            .expect("queued");
    }
    let mut acknowledged = HashSet::new();
    while acknowledged.len() < 10 * PER_BATCH {
        let ack = acks.next().await.expect("an acknowledgement").expect("ok");
        acknowledged.extend(ack.results.into_iter().map(|r| r.event_id));
    }
    server.child.kill().expect("SIGKILL");
    server.child.wait().expect("reaped");
    // Whatever else was acknowledged before the connection died counts too.
    while let Some(Ok(ack)) = acks.next().await {
        acknowledged.extend(ack.results.into_iter().map(|r| r.event_id));
    }
    drop(sender);

    let mut server = start(database.url(), dir.path());
    let mut client = connect(&server).await;
    let mut stored = Vec::new();
    let mut token = String::new();
    loop {
        let page = client
            .query_events(pb::QueryEventsRequest {
                filter: None,
                page: Some(pb::PageRequest {
                    page_size: 1000,
                    page_token: token,
                }),
            })
            .await
            .expect("queries after restart")
            .into_inner();
        stored.extend(
            page.events
                .into_iter()
                .filter_map(|e| e.event)
                .map(|e| e.event_id),
        );
        token = page.page.map(|p| p.next_page_token).unwrap_or_default();
        if token.is_empty() {
            break;
        }
    }
    let unique: HashSet<&String> = stored.iter().collect();
    assert_eq!(unique.len(), stored.len(), "no event stored twice");
    let missing: Vec<&String> = acknowledged
        .iter()
        .filter(|id| !unique.contains(id))
        .collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged events lost, e.g. {:?}",
        missing.len(),
        missing.first()
    );
    assert!(acknowledged.len() >= 10 * PER_BATCH);
    eprintln!(
        "crash test: {} acknowledged before the kill, {} stored after restart, {} queued",
        acknowledged.len(),
        stored.len(),
        64 * PER_BATCH
    );

    // The client retries everything it queued: acknowledged events come back as duplicates.
    let retry = (0..64 * PER_BATCH).map(event).collect();
    let results = client
        .capture(pb::CaptureRequest { events: retry })
        .await
        .expect("retry")
        .into_inner()
        .results;
    let duplicates = results
        .iter()
        .filter(|r| r.outcome == pb::CaptureOutcome::Duplicate as i32)
        .count();
    assert_eq!(
        duplicates,
        stored.len(),
        "exactly the stored ones are duplicates"
    );

    let last = results.iter().map(|r| r.sequence).max().unwrap_or_default();
    let mut genealogy = GenealogyServiceClient::connect(server.grpc_url())
        .await
        .expect("genealogy");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while genealogy
        .get_projection_status(pb::GetProjectionStatusRequest {})
        .await
        .expect("status")
        .into_inner()
        .applied_sequence
        < last
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "genealogy never caught up"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for n in 0..64 * PER_BATCH {
        let entries = genealogy
            .history(pb::HistoryRequest {
                id: format!("urn:epc:id:sgtin:4012345.011111.{n}"),
                page: None,
            })
            .await
            .expect("history")
            .into_inner()
            .entries;
        let ids: Vec<String> = entries.into_iter().map(|e| e.event_id).collect();
        assert_eq!(ids, [event(n).event_id], "unit {n}: its one event, once");
    }

    server.child.kill().expect("stop");
    server.child.wait().expect("reaped");
    database.drop_database().await.expect("database dropped");
}

/// The newest sync run, once it has ended.
async fn newest_finished_run(client: &mut IntegrationServiceClient<Channel>) -> pb::SyncRun {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let runs = client
            .list_sync_runs(pb::ListSyncRunsRequest::default())
            .await
            .expect("runs")
            .into_inner()
            .runs;
        if let Some(run) = runs.first().filter(|r| r.end_time.is_some()) {
            return run.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the sync never finished"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn connect_integration(server: &ServerProcess) -> IntegrationServiceClient<Channel> {
    connect(server).await;
    IntegrationServiceClient::connect(server.grpc_url())
        .await
        .expect("integration")
}

#[tokio::test]
async fn a_sync_killed_mid_page_resumes_there_after_a_restart() {
    let database = TestDatabase::create().await.expect("database");
    let dir = tempfile::tempdir().expect("working directory");
    // The ERPNext item page at offset 2 hangs the first time: the kill lands during it.
    let sites = ErpSites::start(true).await;
    std::fs::write(dir.path().join("tracery.toml"), sites.connectors_toml()).expect("config");
    let mut server = start(database.url(), dir.path());
    let mut client = connect_integration(&server).await;
    client
        .trigger_sync(pb::TriggerSyncRequest {
            connector: "erp".to_owned(),
        })
        .await
        .expect("sync starts");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while sites.item_page_requests(2).await == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the second page was never asked for"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.child.kill().expect("SIGKILL");
    server.child.wait().expect("reaped");

    let mut server = start(database.url(), dir.path());
    let mut client = connect_integration(&server).await;
    let resumed = newest_finished_run(&mut client).await;
    assert_eq!(
        resumed.state,
        pb::SyncRunState::Succeeded as i32,
        "{:?}",
        resumed.errors
    );
    let runs = client
        .list_sync_runs(pb::ListSyncRunsRequest::default())
        .await
        .expect("runs")
        .into_inner()
        .runs;
    let [resumed, killed] = runs.as_slice() else {
        panic!("the killed run and its resumption: {runs:?}");
    };
    assert_eq!(killed.state, pb::SyncRunState::Failed as i32);
    assert!(
        killed.errors[0].starts_with("interrupted"),
        "{:?}",
        killed.errors
    );
    // The first page was applied before the kill and is not fetched again; the killed
    // page is fetched again; every item is stored once.
    assert_eq!(sites.item_page_requests(0).await, 1);
    assert_eq!(sites.item_page_requests(2).await, 2);
    let created = |run: &pb::SyncRun| run.counts.unwrap_or_default().created;
    assert_eq!(created(killed), 2, "the first item page");
    assert_eq!(
        created(resumed),
        3 + 1 + 2,
        "the other items, the BOM, the work orders"
    );
    for (code, _) in ERPNEXT_ITEMS {
        client
            .resolve_item(pb::ResolveItemRequest {
                key: Some(pb::resolve_item_request::Key::ItemCode(code.to_owned())),
            })
            .await
            .expect("synced");
    }
    let stored = count(
        &database,
        "SELECT COUNT(*) AS n FROM integration_records WHERE kind = 'materials'",
    )
    .await;
    assert_eq!(
        stored,
        Some(ERPNEXT_ITEMS.len() as i64),
        "no item stored twice"
    );

    server.child.kill().expect("stop");
    server.child.wait().expect("reaped");
    database.drop_database().await.expect("database dropped");
}

/// A TransformationEvent under ERPNext work order MFG-WO-2025-00012 consuming a shaft lot.
fn pumps_made() -> pb::EpcisEvent {
    let quantity = |class: &str| pb::QuantityElement {
        epc_class: class.to_owned(),
        quantity: Some(10.0),
        uom: String::new(),
    };
    pb::EpcisEvent {
        event_id: "urn:uuid:00000000-0000-4000-8000-d00000000001".to_owned(),
        event_time: Some(prost_types::Timestamp {
            seconds: 1_795_651_200,
            nanos: 0,
        }),
        event_time_zone_offset: "+01:00".to_owned(),
        biz_step: "commissioning".to_owned(),
        biz_transactions: vec![pb::BizTransaction {
            r#type: "urn:epcglobal:cbv:btt:prodorder".to_owned(),
            id: "MFG-WO-2025-00012".to_owned(),
        }],
        body: Some(pb::epcis_event::Body::TransformationEvent(
            pb::TransformationEvent {
                input_quantities: vec![quantity("urn:epc:class:lgtin:4012345.011111.SH-2502-07")],
                output_quantities: vec![quantity("urn:epc:class:lgtin:4012345.044444.P1")],
                ..Default::default()
            },
        )),
        ..Default::default()
    }
}

/// An ObjectEvent commissioning three valves under SAP order 1000123.
fn valves_made() -> pb::EpcisEvent {
    pb::EpcisEvent {
        event_id: "urn:uuid:00000000-0000-4000-8000-d00000000002".to_owned(),
        event_time: Some(prost_types::Timestamp {
            seconds: 1_795_651_260,
            nanos: 0,
        }),
        event_time_zone_offset: "+01:00".to_owned(),
        biz_step: "commissioning".to_owned(),
        biz_transactions: vec![pb::BizTransaction {
            r#type: "urn:epcglobal:cbv:btt:prodorder".to_owned(),
            id: "1000123".to_owned(),
        }],
        body: Some(pb::epcis_event::Body::ObjectEvent(pb::ObjectEvent {
            action: pb::Action::Add.into(),
            epcs: (0..3)
                .map(|n| format!("urn:epc:id:sgtin:4012345.077777.K{n}"))
                .collect(),
            ..Default::default()
        })),
        ..Default::default()
    }
}

#[tokio::test]
async fn postings_killed_between_sending_and_recording_are_not_sent_again() {
    let database = TestDatabase::create().await.expect("database");
    let dir = tempfile::tempdir().expect("working directory");
    let sites = ErpSites::start(false).await;
    let postings = sites.take_postings().await;
    // The ERPs store what they get at once and answer long after the kill.
    postings.answer(Answer::Late(Duration::from_secs(20)));
    std::fs::write(
        dir.path().join("tracery.toml"),
        sites.connectors_toml_posting_back(2),
    )
    .expect("config");
    let mut server = start(database.url(), dir.path());
    let mut client = connect_integration(&server).await;
    client
        .trigger_sync(pb::TriggerSyncRequest {
            connector: String::new(),
        })
        .await
        .expect("sync starts");
    let synced = newest_finished_run(&mut client).await;
    assert_eq!(synced.state, pb::SyncRunState::Succeeded as i32);
    let results = connect(&server)
        .await
        .capture(pb::CaptureRequest {
            events: vec![pumps_made(), valves_made()],
        })
        .await
        .expect("captured")
        .into_inner()
        .results;
    assert!(
        results
            .iter()
            .all(|r| r.outcome == pb::CaptureOutcome::Accepted as i32),
        "{results:?}"
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while postings.stock_entries().is_empty() || postings.confirmations().is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the stock entry and the confirmation were never sent"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.child.kill().expect("SIGKILL");
    server.child.wait().expect("reaped");

    let mut server = start(database.url(), dir.path());
    let mut client = connect_integration(&server).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let sent = loop {
        let listed = client
            .list_postings(pb::ListPostingsRequest {
                states: vec![pb::PostingState::Sent as i32],
                page: None,
            })
            .await
            .expect("postings")
            .into_inner()
            .postings;
        if listed.len() == 2 {
            break listed;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the postings never completed after the restart: {listed:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let documents: HashSet<(&str, &str)> = sent
        .iter()
        .map(|p| (p.connector.as_str(), p.erp_document.as_str()))
        .collect();
    assert_eq!(
        documents,
        HashSet::from([("erp", "MAT-STE-2026-00001"), ("sap", "0000004711/1")])
    );
    assert!(
        sent.iter().all(|p| p.attempts == 2),
        "the killed send, then the lookup: {sent:?}"
    );
    assert_eq!(
        postings.stock_entries().len(),
        1,
        "ERPNext got the stock entry once"
    );
    assert_eq!(
        postings.confirmations().len(),
        1,
        "SAP got the confirmation once"
    );

    server.child.kill().expect("stop");
    server.child.wait().expect("reaped");
    database.drop_database().await.expect("database dropped");
}

/// The `n` a `SELECT COUNT(*) AS n ...` finds in `database`.
async fn count(database: &TestDatabase, sql: &str) -> Option<i64> {
    let db = sea_orm::Database::connect(database.url())
        .await
        .expect("database");
    db.query_one_raw(sea_orm::Statement::from_string(
        db.get_database_backend(),
        sql,
    ))
    .await
    .expect("count")
    .and_then(|row| row.try_get::<i64>("", "n").ok())
}

/// The highest sequence the server has stored, from its `/metrics`.
async fn last_sequence(http: &reqwest::Client, server: &ServerProcess) -> u64 {
    let Ok(response) = http
        .get(format!("{}/metrics", server.http_url()))
        .send()
        .await
    else {
        return 0;
    };
    let text = response.text().await.unwrap_or_default();
    text.lines()
        .find_map(|line| line.strip_prefix("tracery_capture_last_sequence "))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0)
}

/// A client sends batch after batch; SIGTERM arrives once part of them is stored (seen in
/// the store count, so the signal surely lands mid-work). The batch in flight is answered,
/// the process exits cleanly, and the store holds exactly the batches answered as stored.
#[tokio::test]
async fn sigterm_answers_the_request_in_flight_then_exits() {
    const BATCHES: usize = 40;
    const PER_SENT_BATCH: usize = 1_000;
    let database = TestDatabase::create().await.expect("database");
    let dir = tempfile::tempdir().expect("working directory");
    let mut server = start(database.url(), dir.path());
    let mut client = connect(&server).await;
    let signalled = std::sync::Arc::new(tokio::sync::OnceCell::<std::time::Instant>::new());
    let sender = {
        let signalled = std::sync::Arc::clone(&signalled);
        tokio::spawn(async move {
            // (events acknowledged, batches answered after the signal)
            let (mut acknowledged, mut after_signal) = (0, 0);
            for batch in 0..BATCHES {
                let events = (0..PER_SENT_BATCH)
                    .map(|n| event(500_000 + batch * PER_SENT_BATCH + n))
                    .collect();
                let Ok(response) = client.capture(pb::CaptureRequest { events }).await else {
                    break;
                };
                let results = response.into_inner().results;
                assert!(
                    results
                        .iter()
                        .all(|r| r.outcome == pb::CaptureOutcome::Accepted as i32),
                    "an answered batch is stored whole"
                );
                acknowledged += results.len();
                after_signal += usize::from(signalled.initialized());
            }
            (acknowledged, after_signal)
        })
    };
    let http = reqwest::Client::new();
    let total = (BATCHES * PER_SENT_BATCH) as u64;
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let stored = last_sequence(&http, &server).await;
        assert!(stored < total, "every batch was stored before the signal");
        if stored >= PER_SENT_BATCH as u64 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "nothing stored");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let sent = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(sent.success());
    signalled
        .set(std::time::Instant::now())
        .expect("signalled once");
    let (acknowledged, after_signal) = sender.await.expect("the sender ends");
    assert!(
        after_signal >= 1,
        "the batch in flight at SIGTERM is answered"
    );
    assert!(
        acknowledged < BATCHES * PER_SENT_BATCH,
        "the signal landed mid-run"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(35);
    let status = loop {
        if let Some(status) = server.child.try_wait().expect("wait") {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still running 35 s after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(status.success(), "exits cleanly after draining: {status:?}");
    let stored = count(&database, "SELECT COUNT(*) AS n FROM capture_events").await;
    assert_eq!(
        stored,
        Some(acknowledged as i64),
        "the store holds exactly the acknowledged batches"
    );
    database.drop_database().await.expect("dropped");
}

/// CPU seconds (user and system) the process `pid` has used so far.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc stat");
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks: f64 =
        fields[11].parse::<f64>().expect("utime") + fields[12].parse::<f64>().expect("stime");
    // The kernel's USER_HZ, 100 on Linux.
    ticks / 100.0
}

async fn postings_in(
    client: &mut IntegrationServiceClient<Channel>,
    state: pb::PostingState,
) -> Vec<pb::Posting> {
    client
        .list_postings(pb::ListPostingsRequest {
            states: vec![state as i32],
            page: None,
        })
        .await
        .expect("postings")
        .into_inner()
        .postings
}

/// A plant stopped for maintenance while its ERPs are down: the post-back worker waits
/// for its backoff without using the CPU, SIGTERM ends the process within a couple of
/// seconds (the attempt in flight finished, nothing new attempted), and the postings are
/// still due; after a restart with the ERPs back, each is posted exactly once.
#[tokio::test]
async fn sigterm_with_postings_due_exits_promptly_and_keeps_them() {
    let database = TestDatabase::create().await.expect("database");
    let dir = tempfile::tempdir().expect("working directory");
    let sites = ErpSites::start(false).await;
    let postings = sites.take_postings().await;
    std::fs::write(
        dir.path().join("tracery.toml"),
        sites.connectors_toml_posting_back(2),
    )
    .expect("config");
    let mut server = start(database.url(), dir.path());
    let mut client = connect_integration(&server).await;
    client
        .trigger_sync(pb::TriggerSyncRequest {
            connector: String::new(),
        })
        .await
        .expect("sync starts");
    assert_eq!(
        newest_finished_run(&mut client).await.state,
        pb::SyncRunState::Succeeded as i32
    );
    // The ERPs go down: every write is answered 503, slowly.
    postings.answer(Answer::Unavailable(Duration::from_millis(300)));
    connect(&server)
        .await
        .capture(pb::CaptureRequest {
            events: vec![pumps_made(), valves_made()],
        })
        .await
        .expect("captured");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let failing = postings_in(&mut client, pb::PostingState::Pending).await;
        if failing.len() == 2 && failing.iter().all(|p| p.attempts >= 1) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the postings were never attempted: {failing:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Waiting for the backoff costs nothing measurable.
    let pid = server.child.id();
    let before = cpu_seconds(pid);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let used = cpu_seconds(pid) - before;
    assert!(used < 0.5, "{used:.2} CPU seconds in 3 s of waiting");

    let stopping = std::time::Instant::now();
    let sent = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(sent.success());
    let status = loop {
        if let Some(status) = server.child.try_wait().expect("wait") {
            break status;
        }
        assert!(
            stopping.elapsed() < Duration::from_secs(6),
            "still running {:?} after SIGTERM with postings due",
            stopping.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "a clean exit: {status:?}");
    eprintln!(
        "post-back stop: {used:.2} CPU s in 3 s of backoff; exited {:?} after SIGTERM",
        stopping.elapsed()
    );
    assert!(postings.stock_entries().is_empty() && postings.confirmations().is_empty());

    // Back in service: each posting goes out once.
    postings.answer(Answer::Normally);
    let mut server = start(database.url(), dir.path());
    let mut client = connect_integration(&server).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let sent = postings_in(&mut client, pb::PostingState::Sent).await;
        if sent.len() == 2 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the postings were not sent after the restart: {sent:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(postings.stock_entries().len(), 1, "ERPNext got it once");
    assert_eq!(postings.confirmations().len(), 1, "SAP got it once");
    server.child.kill().expect("stop");
    server.child.wait().expect("reaped");
    database.drop_database().await.expect("dropped");
}
