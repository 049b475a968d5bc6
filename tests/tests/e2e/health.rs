//! Health per service and reflection, through the real gRPC interface.

use futures::StreamExt as _;
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};
use tonic_reflection::pb::v1::{
    ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
    server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
};
use tracery_e2e::TestApp;

const SERVICES: [&str; 4] = [
    "tracery.v1.IdentityService",
    "tracery.v1.CaptureService",
    "tracery.v1.GenealogyService",
    "tracery.v1.IntegrationService",
];

#[tokio::test]
async fn every_service_reports_serving_and_is_listed_by_reflection() {
    let mut app = TestApp::spawn().await.expect("suite starts");
    for service in SERVICES.into_iter().chain([""]) {
        let status = app
            .health
            .check(HealthCheckRequest {
                service: service.to_owned(),
            })
            .await
            .unwrap_or_else(|err| panic!("health of `{service}`: {err}"))
            .into_inner()
            .status;
        assert_eq!(status, ServingStatus::Serving as i32, "`{service}`");
    }

    let mut reflection = ServerReflectionClient::new(app.channel.clone());
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = reflection
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("reflection answers")
        .into_inner();
    let response = responses.next().await.expect("one response").expect("ok");
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("expected a service list, got {response:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for service in SERVICES.into_iter().chain(["grpc.health.v1.Health"]) {
        assert!(
            names.iter().any(|n| n == service),
            "{service} missing from {names:?}"
        );
    }

    let body = http_get(app.http_addr, "/healthz").await;
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    assert!(body.contains(r#""status":"SERVING""#), "{body}");
    app.stop().await.expect("clean stop");
}

/// A minimal HTTP/1.1 GET, so the test needs no HTTP client crate.
async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connects");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("writes");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("reads");
    response
}

#[tokio::test]
async fn the_plain_health_listener_answers_probes_alone() {
    use tonic_health::pb::health_client::HealthClient;
    let app = TestApp::spawn_with(|config| {
        config.health_listen = Some(std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
    })
    .await
    .expect("suite starts");
    let health_addr = app.health_addr.expect("a health listener");
    let channel = tonic::transport::Channel::from_shared(format!("http://{health_addr}"))
        .expect("endpoint")
        .connect()
        .await
        .expect("the health listener accepts");
    // NOT_SERVING while the suite starts, as a probe should see it; then SERVING.
    let mut status = None;
    for _ in 0..100 {
        let answer = HealthClient::new(channel.clone())
            .check(HealthCheckRequest {
                service: "tracery.v1.CaptureService".to_owned(),
            })
            .await
            .expect("health answers")
            .into_inner()
            .status;
        status = Some(answer);
        if answer == ServingStatus::Serving as i32 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(status, Some(ServingStatus::Serving as i32));
    let liveness = HealthClient::new(channel.clone())
        .check(HealthCheckRequest {
            service: "liveness".to_owned(),
        })
        .await
        .expect("liveness answers")
        .into_inner()
        .status;
    assert_eq!(liveness, ServingStatus::Serving as i32);
    // Nothing else is served there.
    let other = tracery_proto::v1::capture_service_client::CaptureServiceClient::new(channel)
        .get_event(tracery_proto::v1::GetEventRequest::default())
        .await
        .expect_err("only health");
    assert_eq!(other.code(), tonic::Code::Unimplemented);
    app.stop().await.expect("stops");
}

#[tokio::test]
async fn metrics_count_requests_events_and_followers() {
    let app = TestApp::spawn().await.expect("suite starts");
    let result = app
        .capture
        .clone()
        .capture(tracery_proto::v1::CaptureRequest {
            events: vec![crate::capture::observe(
                "urn:uuid:3e7a0000-0000-4000-8000-000000000001",
                &["urn:epc:id:sgtin:4012345.011111.8001"],
                "shipping",
                1,
            )],
        })
        .await
        .expect("captured")
        .into_inner();
    app.await_genealogy(result.results[0].sequence).await;
    let metrics = app.metrics().await;
    for line in [
        r#"tracery_requests_total{code="0",interface="grpc",method="/tracery.v1.CaptureService/Capture"}"#,
        r#"tracery_request_duration_seconds_bucket{interface="grpc",method="/tracery.v1.CaptureService/Capture""#,
        r#"tracery_capture_events_total{channel="grpc",outcome="accepted"}"#,
        "tracery_capture_commit_queue",
        "tracery_capture_last_sequence",
        r#"tracery_follower_applied_sequence{follower="genealogy"}"#,
    ] {
        assert!(metrics.contains(line), "{line} missing from /metrics");
    }
    app.stop().await.expect("stops");
}
