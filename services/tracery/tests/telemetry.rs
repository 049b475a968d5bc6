//! OpenTelemetry across services: a split deployment (capture in one process, genealogy
//! following it in another) exports to an OTLP receiver in this test, and one capture
//! call yields spans from both services under one trace id: the capture call's spans, and
//! genealogy's spans applying the captured event.

use std::{
    collections::{BTreeMap, BTreeSet},
    process::Command,
    sync::{Arc, Mutex},
    time::Duration,
};

use opentelemetry_proto::tonic::{
    collector::trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
        trace_service_server::{TraceService, TraceServiceServer},
    },
    common::v1::any_value::Value,
};
use tonic::transport::Channel;
use tracery_e2e::{TestDatabase, process::ServerProcess};
use tracery_proto::v1::{self as pb, capture_service_client::CaptureServiceClient};

/// The trace the test's capture call starts.
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

/// Spans received: trace id (hex) → the service names that sent spans in it.
type Received = Arc<Mutex<BTreeMap<String, BTreeSet<String>>>>;

struct Receiver(Received);

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut received = self.0.lock().expect("lock");
        for resource_spans in request.into_inner().resource_spans {
            let service = resource_spans
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|a| a.key == "service.name")
                .and_then(|a| a.value.as_ref()?.value.as_ref())
                .map(|v| match v {
                    Value::StringValue(name) => name.clone(),
                    other => format!("{other:?}"),
                })
                .unwrap_or_default();
            for scope in resource_spans.scope_spans {
                for span in scope.spans {
                    let trace: String = span.trace_id.iter().map(|b| format!("{b:02x}")).collect();
                    received.entry(trace).or_default().insert(service.clone());
                }
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

/// `tracery serve` with `args`, exporting its spans to `otlp`.
fn start(args: &[&str], database_url: &str, otlp: &str, dir: &std::path::Path) -> ServerProcess {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tracery"));
    command
        .arg("serve")
        .args(args)
        .args(["--database-url", database_url])
        .current_dir(dir)
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", otlp)
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .env("RUST_LOG", "warn");
    ServerProcess::start(command)
}

async fn connect(server: &ServerProcess) -> Channel {
    for _ in 0..300 {
        if let Ok(channel) = Channel::from_shared(server.grpc_url())
            .expect("endpoint")
            .connect()
            .await
        {
            return channel;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("nothing listens on {}", server.grpc);
}

#[tokio::test]
async fn one_capture_call_is_one_trace_across_capture_and_genealogy() {
    let received: Received = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("receiver port");
    let otlp = format!("http://{}", listener.local_addr().expect("addr"));
    let receiver = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(Receiver(Arc::clone(&received))))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );

    let dir = tempfile::tempdir().expect("folder");
    let (capture_db, genealogy_db) = (
        TestDatabase::create().await.expect("database"),
        TestDatabase::create().await.expect("database"),
    );
    let capture = start(
        &["--service", "capture"],
        capture_db.url(),
        &otlp,
        dir.path(),
    );
    let genealogy = start(
        &[
            "--service",
            "genealogy",
            "--capture-endpoint",
            &capture.grpc_url(),
        ],
        genealogy_db.url(),
        &otlp,
        dir.path(),
    );

    let mut client = CaptureServiceClient::new(connect(&capture).await);
    let mut event = pb::EpcisEvent {
        event_id: "urn:uuid:0e1f0000-0000-4000-8000-000000000001".to_owned(),
        event_time: Some(prost_types::Timestamp {
            seconds: 1_795_651_200,
            nanos: 0,
        }),
        event_time_zone_offset: "+01:00".to_owned(),
        biz_step: "shipping".to_owned(),
        ..Default::default()
    };
    event.body = Some(pb::epcis_event::Body::ObjectEvent(pb::ObjectEvent {
        action: pb::Action::Observe.into(),
        epcs: vec!["urn:epc:id:sgtin:4012345.011111.7001".to_owned()],
        ..Default::default()
    }));
    let mut captured = false;
    for _ in 0..100 {
        // Capture may still be starting (NOT_SERVING, migrating): try again shortly.
        // The call is the start of a trace this test names.
        let mut request = tonic::Request::new(pb::CaptureRequest {
            events: vec![event.clone()],
        });
        request.metadata_mut().insert(
            "traceparent",
            format!("00-{TRACE_ID}-00f067aa0ba902b7-01")
                .parse()
                .expect("header"),
        );
        if client.capture(request).await.is_ok() {
            captured = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(captured, "capture answered");

    let wanted = BTreeSet::from(["tracery-capture".to_owned(), "tracery-genealogy".to_owned()]);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let shared = received
            .lock()
            .expect("lock")
            .get(TRACE_ID)
            .is_some_and(|services| wanted.is_subset(services));
        if shared {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "trace {TRACE_ID} has no spans from both services: {:?}",
            received.lock().expect("lock")
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop((capture, genealogy));
    receiver.abort();
    capture_db.drop_database().await.expect("dropped");
    genealogy_db.drop_database().await.expect("dropped");
}
