//! Capture throughput through the EPCIS REST binding: `--clients` concurrent clients each
//! posting EPCISDocuments of `--batch` plant events to `POST /capture`, timing each post
//! until its `202` (events are stored when it comes).

use std::time::Instant;

use crate::{
    plant::{self, Plant},
    table,
};
use anyhow::Context as _;
use hdrhistogram::Histogram;

/// Options of `tracery-bench rest`.
#[derive(clap::Args)]
pub struct Args {
    /// The suite's HTTP address.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    #[arg(long, default_value_t = 20_000)]
    events: usize,
    /// Events per document.
    #[arg(long, default_value_t = 500)]
    batch: usize,
    #[arg(long, default_value_t = 4)]
    clients: usize,
    /// Plant seed of the first client; client i uses seed + i (seeds 0 to 9).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[arg(long, default_value = "")]
    label: String,
}

/// The documents one client posts.
fn documents(seed: u64, events: usize, batch: usize) -> anyhow::Result<Vec<String>> {
    let events = Plant::new(seed, events)
        .map(|event| plant::event_json(&event))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(events
        .chunks(batch)
        .map(|chunk| plant::document(chunk).to_string())
        .collect())
}

/// Runs the benchmark and prints the table.
pub async fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.seed + args.clients as u64 <= 10,
        "seeds 0 to 9 only: lower --seed or --clients"
    );
    let per_client = args.events.div_ceil(args.clients);
    let mut work = Vec::new();
    for i in 0..args.clients {
        work.push(documents(args.seed + i as u64, per_client, args.batch)?);
    }
    let http = reqwest::Client::new();
    let started = Instant::now();
    let tasks: Vec<_> = work
        .into_iter()
        .map(|documents| {
            let http = http.clone();
            let url = format!("{}/capture", args.url);
            tokio::spawn(async move {
                let mut histogram = Histogram::<u64>::new(3)?;
                for document in documents {
                    let posted = Instant::now();
                    let response = http
                        .post(&url)
                        .header("Content-Type", "application/ld+json")
                        .header("GS1-Capture-Error-Behaviour", "proceed")
                        .body(document)
                        .send()
                        .await
                        .context("POST /capture")?;
                    anyhow::ensure!(
                        response.status() == reqwest::StatusCode::ACCEPTED,
                        "POST /capture answered {}",
                        response.status()
                    );
                    histogram.record(posted.elapsed().as_micros() as u64)?;
                }
                anyhow::Ok(histogram)
            })
        })
        .collect();
    let mut histogram = Histogram::<u64>::new(3)?;
    for task in tasks {
        histogram.add(task.await??)?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let events = per_client * args.clients;
    table::print(
        &[
            "run",
            "events",
            "per document",
            "clients",
            "events/s",
            "202 p50 ms",
            "202 p99 ms",
        ],
        &[
            args.label.clone(),
            events.to_string(),
            args.batch.to_string(),
            args.clients.to_string(),
            table::per_second(events, elapsed),
            table::ms(&histogram, 0.5),
            table::ms(&histogram, 0.99),
        ],
    );
    Ok(())
}
