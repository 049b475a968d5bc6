//! `tracery`: manufacturing track & trace. `tracery serve` runs the suite; the other
//! subcommands are the operator CLI, talking gRPC to a running suite (see [`tracery::cli`]).

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracery::cli::{
    self, AnalyzeArgs, ArchiveCommand, CaptureArgs, ContentsArgs, HistoryArgs, LabelCommand,
    QuarantineCommand, RecallArgs, SerialsCommand, SyncCommand, TraceCommand, WhereArgs,
};
use tracery_runtime::config::ServeArgs;

/// mimalloc rather than glibc's allocator: the suite makes many small short-lived
/// allocations per event (decoding, canonical URIs, rows), and glibc's malloc and free
/// took about 45 % of its CPU under a capture load (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// Trace an identifier backward (origins) or forward (where it went).
    #[command(subcommand)]
    Trace(TraceCommand),
    /// Everything a lot reached: the recall scope, with where each item is.
    Recall(RecallArgs),
    /// What failed units have in common that good ones do not, ranked by significance.
    Analyze(AnalyzeArgs),
    /// Every event that touched an identifier.
    History(HistoryArgs),
    /// What a container holds, now or at a past time.
    Contents(ContentsArgs),
    /// Where an identifier is, as far as the events say.
    Where(WhereArgs),
    /// Capture EPCIS documents (JSON-LD or XML).
    Capture(CaptureArgs),
    /// Look at and act on quarantined events.
    #[command(subcommand)]
    Quarantine(QuarantineCommand),
    /// Serial numbers from a pool.
    #[command(subcommand)]
    Serials(SerialsCommand),
    /// Printable labels (GS1 DataMatrix or Digital Link QR; SVG, PNG or ZPL).
    #[command(subcommand)]
    Label(LabelCommand),
    /// ERP/PLM synchronisation and post-back status.
    #[command(subcommand)]
    Sync(SyncCommand),
    /// Closed months of events into archive files, out of the store, and back.
    #[command(subcommand)]
    Archive(ArchiveCommand),
}

#[tokio::main]
async fn main() -> ExitCode {
    let outcome = match Cli::parse().command {
        Command::Serve(args) => {
            return server_exit(
                tracery_runtime::server::serve(
                    &args,
                    tracery::all_modules(),
                    None,
                    vec![std::sync::Arc::new(tracery::dashboard::Dashboard)],
                )
                .await,
            );
        }
        Command::Migrate(args) => {
            return server_exit(
                tracery_runtime::server::migrate(&args, tracery::all_modules()).await,
            );
        }
        Command::Trace(command) => cli::genealogy::trace(command).await,
        Command::Recall(args) => cli::genealogy::recall(args).await,
        Command::Analyze(args) => cli::genealogy::analyze(args).await,
        Command::History(args) => cli::genealogy::history(args).await,
        Command::Contents(args) => cli::genealogy::contents(args).await,
        Command::Where(args) => cli::genealogy::where_is(args).await,
        Command::Capture(args) => cli::capture::run(args).await,
        Command::Quarantine(command) => cli::quarantine::run(command).await,
        Command::Serials(command) => cli::identity::serials(command).await,
        Command::Label(command) => cli::identity::label(command).await,
        Command::Sync(command) => cli::integration::run(command).await,
        Command::Archive(ArchiveCommand::Export(args)) => cli::archive::export(args).await,
        Command::Archive(ArchiveCommand::Drop(args)) => cli::archive::drop_months(args).await,
        Command::Archive(ArchiveCommand::Import(args)) => cli::archive::import(args).await,
    };
    cli::finish(outcome)
}

fn server_exit(outcome: anyhow::Result<()>) -> ExitCode {
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("Error: {err:?}");
            ExitCode::FAILURE
        }
    }
}
