//! The service's own binary starts alone, with no peer endpoints configured, and reports
//! SERVING: the per-service deployment.

#[tokio::test]
async fn starts_alone_and_serves() {
    tracery_e2e::assert_serves_alone(
        env!("CARGO_BIN_EXE_tracery-capture"),
        "tracery.v1.CaptureService",
    )
    .await;
}
