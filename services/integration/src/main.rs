//! `tracery-integration`: the integration service alone, for per-service deployment.

use std::sync::Arc;

use clap::Parser;
use tracery_runtime::{ServiceKey, config::ServeArgs};

#[derive(Parser)]
#[command(version, about = "Tracery integration service")]
struct Cli {
    #[command(flatten)]
    serve: ServeArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let module = Arc::new(tracery_integration::IntegrationModule);
    tracery_runtime::server::serve(
        &cli.serve,
        vec![module],
        Some(ServiceKey::Integration),
        Vec::new(),
    )
    .await
}
