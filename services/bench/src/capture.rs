//! Capture throughput: `--streams` concurrent `CaptureStream` calls, each sending a
//! synthetic plant's events (see [`crate::plant`]) in batches of `--batch` with at most
//! `--in-flight` unacknowledged batches, timing every batch from send to acknowledgement.

use std::{collections::HashMap, time::Instant};

use anyhow::Context as _;
use futures::StreamExt as _;
use hdrhistogram::Histogram;
use tokio::sync::mpsc;

use crate::plant::Plant;
use tokio_stream::wrappers::ReceiverStream;
use tracery_proto::v1::{
    self as pb, capture_service_client::CaptureServiceClient as CaptureClient,
};

/// Options of `tracery-bench capture`.
#[derive(clap::Args)]
pub struct Args {
    /// The suite's gRPC address.
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    addr: String,
    /// Events in total.
    #[arg(long, default_value_t = 100_000)]
    events: usize,
    /// Events per batch.
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// Concurrent streams.
    #[arg(long, default_value_t = 4)]
    streams: usize,
    /// Unacknowledged batches per stream.
    #[arg(long, default_value_t = 4)]
    in_flight: usize,
    /// Label for the table's first column (e.g. the database).
    #[arg(long, default_value = "")]
    label: String,
    /// Plant seed of the first stream; stream i uses seed + i (seeds 0 to 9).
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

/// Runs one stream: returns the latency (µs) of each batch and the events acknowledged.
async fn stream(
    client: CaptureClient<tonic::transport::Channel>,
    plant: Plant,
    batch: usize,
    in_flight: usize,
) -> anyhow::Result<(Histogram<u64>, usize, usize)> {
    let mut client = client;
    let (sender, receiver) = mpsc::channel(in_flight);
    let mut responses = client
        .capture_stream(ReceiverStream::new(receiver))
        .await?
        .into_inner();
    let events: Vec<pb::EpcisEvent> = plant.collect();
    let total = events.len();
    let batches: Vec<&[pb::EpcisEvent]> = events.chunks(batch).collect();
    let mut sent_at: HashMap<String, Instant> = HashMap::new();
    let mut histogram = Histogram::<u64>::new(3)?;
    let mut acknowledged = 0;
    let mut quarantined = 0;
    let mut next = 0;
    let mut outstanding = 0;
    while acknowledged < total {
        while outstanding < in_flight && next < batches.len() {
            let batch_id = next.to_string();
            let events = batches[next].to_vec();
            sent_at.insert(batch_id.clone(), Instant::now());
            sender
                .send(pb::CaptureStreamRequest { batch_id, events })
                .await
                .context("stream closed")?;
            next += 1;
            outstanding += 1;
        }
        let ack = responses
            .next()
            .await
            .context("server ended the stream")??;
        if let Some(started) = sent_at.remove(&ack.batch_id) {
            histogram.record(started.elapsed().as_micros() as u64)?;
        }
        acknowledged += ack.results.len();
        quarantined += ack
            .results
            .iter()
            .filter(|r| r.outcome == pb::CaptureOutcome::Quarantined as i32)
            .count();
        outstanding -= 1;
    }
    Ok((histogram, acknowledged, quarantined))
}

/// Runs the benchmark and prints the table.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let channel = tonic::transport::Endpoint::from_shared(args.addr.clone())?
        .connect()
        .await
        .with_context(|| format!("connecting to {}", args.addr))?;
    let client = CaptureClient::new(channel).max_decoding_message_size(64 << 20);
    anyhow::ensure!(
        args.seed + args.streams as u64 <= 10,
        "seeds 0 to 9 only: lower --seed or --streams"
    );
    let per_stream = args.events.div_ceil(args.streams);
    let started = Instant::now();
    let tasks: Vec<_> = (0..args.streams)
        .map(|i| {
            let plant = Plant::new(args.seed + i as u64, per_stream);
            tokio::spawn(stream(client.clone(), plant, args.batch, args.in_flight))
        })
        .collect();
    let mut histogram = Histogram::<u64>::new(3)?;
    let (mut events, mut quarantined) = (0, 0);
    for task in tasks {
        let (stream_histogram, acknowledged, refused) = task.await??;
        histogram.add(stream_histogram)?;
        events += acknowledged;
        quarantined += refused;
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "| run | events | batch | streams | events/s | ack p50 ms | ack p99 ms | quarantined |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    println!(
        "| {} | {events} | {} | {} | {:.0} | {:.1} | {:.1} | {quarantined} |",
        args.label,
        args.batch,
        args.streams,
        events as f64 / elapsed,
        histogram.value_at_quantile(0.5) as f64 / 1000.0,
        histogram.value_at_quantile(0.99) as f64 / 1000.0,
    );
    Ok(())
}
