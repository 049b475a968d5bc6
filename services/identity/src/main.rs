//! `tracery-identity`: the identity service alone, for per-service deployment.

use std::sync::Arc;

use clap::Parser;
use tracery_runtime::{ServiceKey, config::ServeArgs};

#[derive(Parser)]
#[command(version, about = "Tracery identity service")]
struct Cli {
    #[command(flatten)]
    serve: ServeArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let module = Arc::new(tracery_identity::IdentityModule);
    tracery_runtime::server::serve(
        &cli.serve,
        vec![module],
        Some(ServiceKey::Identity),
        Vec::new(),
    )
    .await
}
