//! The service's own binary starts alone, with no peer endpoints configured, and reports
//! SERVING — the per-service deployment in Kubernetes.

use std::{
    net::TcpListener,
    process::{Command, Stdio},
    time::Duration,
};

use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

#[tokio::test]
async fn starts_alone_and_serves() {
    let dir = tempfile::tempdir().expect("working directory");
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tracery-identity"))
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--http-listen", &format!("127.0.0.1:{}", free_port())])
        .current_dir(dir.path())
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the binary starts");
    let mut status = None;
    for _ in 0..200 {
        let endpoint = tonic::transport::Channel::from_shared(format!("http://127.0.0.1:{port}"))
            .expect("valid URI");
        if let Ok(channel) = endpoint.connect().await {
            let mut health = HealthClient::new(channel);
            let request = HealthCheckRequest {
                service: "tracery.v1.IdentityService".to_owned(),
            };
            if let Ok(response) = health.check(request).await {
                status = Some(response.into_inner().status);
                break;
            }
        }
        if let Ok(Some(exit)) = child.try_wait() {
            panic!("the binary exited: {exit}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    child.kill().expect("stop");
    child.wait().expect("reaped");
    assert_eq!(status, Some(ServingStatus::Serving as i32));
}
