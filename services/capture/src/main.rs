//! `tracery-capture`: the capture service alone, for per-service deployment.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracery_runtime::server::serve_single(std::sync::Arc::new(tracery_capture::CaptureModule)).await
}
