//! `tracery`: manufacturing track & trace. `tracery serve` runs the suite.

use clap::{Parser, Subcommand};
use tracery_runtime::config::ServeArgs;

#[derive(Parser)]
#[command(
    version,
    about = "Tracery: manufacturing track & trace on GS1 EPCIS 2.0"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run services (all four by default) until SIGTERM/SIGINT.
    Serve(ServeArgs),
    /// Apply database migrations for the configured services, then exit.
    Migrate(ServeArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Serve(args) => {
            tracery_runtime::server::serve(&args, tracery::all_modules(), None).await
        }
        Command::Migrate(args) => {
            tracery_runtime::server::migrate(&args, tracery::all_modules()).await
        }
    }
}
