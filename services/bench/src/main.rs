//! `tracery-bench`: load generators against a running Tracery suite. Each prints one
//! Markdown table row per run, so results paste straight into `BENCHMARKS.md`.
//!
//! ```text
//! tracery serve &                      # the suite under test
//! tracery-bench capture --events 100000 --batch 1000 --streams 4
//! ```

mod analyze;
mod capture;
mod epc;
mod generate;
mod rest;
mod rfid;
mod serials;
mod table;
mod trace;
mod trends;
mod unary;

use clap::{Parser, Subcommand};
use tracery_bench::plant;

#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Capture throughput and acknowledgement latency through `CaptureStream`.
    Capture(capture::Args),
    /// Writes the synthetic plant as EPCIS JSON-LD files.
    Generate(generate::Args),
    /// Capture throughput through the EPCIS REST binding (`POST /capture`).
    Rest(rest::Args),
    /// Trace, forward trace and recall latency, with a recursive-SQL baseline.
    Trace(trace::Args),
    /// Serial allocation rate from a sequential pool, with a duplicate count.
    Serials(serials::Args),
    /// EPC hex (RFID) decoding rate on one core; needs no suite.
    Epc(epc::Args),
    /// RFID reader intake: raw reads through the broker to stored observations.
    Rfid(rfid::Args),
    /// Common-cause analysis of a plant with a planted cause.
    Analyze(analyze::Args),
    /// The dashboard's trend data for a period, open loop.
    Trends(trends::Args),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Capture(args) => capture::run(args).await,
        Command::Generate(args) => generate::run(args),
        Command::Rest(args) => rest::run(args).await,
        Command::Trace(args) => trace::run(args).await,
        Command::Serials(args) => serials::run(args).await,
        Command::Epc(args) => epc::run(args),
        Command::Rfid(args) => rfid::run(args).await,
        Command::Analyze(args) => analyze::run(args).await,
        Command::Trends(args) => trends::run(args).await,
    }
}
