//! Crash test: a client streams events while the server process is killed with SIGKILL and
//! started again. Every event acknowledged before the kill must be there afterwards, and
//! none twice; the genealogy projection, killed mid-stream with it, resumes from its
//! cursor and ends with every stored event exactly once.

use std::{
    collections::HashSet,
    net::TcpListener,
    process::{Child, Command, Stdio},
    time::Duration,
};

use tokio_stream::StreamExt as _;
use tonic::transport::Channel;
use tracery_e2e::TestDatabase;
use tracery_proto::v1::{
    self as pb, capture_service_client::CaptureServiceClient,
    genealogy_service_client::GenealogyServiceClient,
};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

struct Server {
    child: Child,
    grpc: String,
}

fn start(database_url: &str, grpc_port: u16, http_port: u16, dir: &std::path::Path) -> Server {
    let child = Command::new(env!("CARGO_BIN_EXE_tracery"))
        .args(["serve", "--listen", &format!("127.0.0.1:{grpc_port}")])
        .args(["--http-listen", &format!("127.0.0.1:{http_port}")])
        .args(["--database-url", database_url])
        .current_dir(dir)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("tracery starts");
    Server {
        child,
        grpc: format!("http://127.0.0.1:{grpc_port}"),
    }
}

async fn connect(server: &Server) -> CaptureServiceClient<Channel> {
    for _ in 0..200 {
        if let Ok(client) = CaptureServiceClient::connect(server.grpc.clone()).await {
            return client;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the server never listened on {}", server.grpc);
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
    let (grpc_port, http_port) = (free_port(), free_port());
    let mut server = start(database.url(), grpc_port, http_port, dir.path());
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

    let mut server = start(database.url(), grpc_port, http_port, dir.path());
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
    let mut genealogy = GenealogyServiceClient::connect(server.grpc.clone())
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
