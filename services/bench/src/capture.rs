//! Capture throughput: `--streams` concurrent `CaptureStream` calls, each sending batches
//! of `--batch` ObjectEvents with at most `--in-flight` unacknowledged batches, timing
//! every batch from send to acknowledgement.

use std::{collections::HashMap, time::Instant};

use anyhow::Context as _;
use futures::StreamExt as _;
use hdrhistogram::Histogram;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tracery_proto::v1::{
    self as pb, capture_service_client::CaptureServiceClient as CaptureClient, epcis_event::Body,
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
}

/// The eventTime of every generated event (2026-11-26T00:00:00Z).
const EVENT_TIME: i64 = 1_795_651_200;

fn event(run: u64, n: usize) -> pb::EpcisEvent {
    pb::EpcisEvent {
        event_id: format!("urn:uuid:00000000-0000-4000-8000-{run:04x}{n:08x}"),
        event_time: Some(prost_types::Timestamp {
            seconds: EVENT_TIME + (n as i64 % 86_400),
            nanos: 0,
        }),
        event_time_zone_offset: "+00:00".into(),
        biz_step: "inspecting".into(),
        read_point: Some(pb::Location {
            id: "urn:epc:id:sgln:4012345.00001.0".into(),
            extensions: None,
        }),
        body: Some(Body::ObjectEvent(pb::ObjectEvent {
            action: pb::Action::Observe.into(),
            epcs: vec![format!("urn:epc:id:sgtin:4012345.011111.{run}{n}")],
            ..Default::default()
        })),
        ..Default::default()
    }
}

/// Runs one stream: returns the latency (µs) of each batch and the events acknowledged.
async fn stream(
    client: CaptureClient<tonic::transport::Channel>,
    run: u64,
    range: std::ops::Range<usize>,
    args_batch: usize,
    in_flight: usize,
) -> anyhow::Result<(Histogram<u64>, usize)> {
    let mut client = client;
    let (sender, receiver) = mpsc::channel(in_flight);
    let mut responses = client
        .capture_stream(ReceiverStream::new(receiver))
        .await?
        .into_inner();
    let batches: Vec<std::ops::Range<usize>> = range
        .clone()
        .step_by(args_batch)
        .map(|start| start..(start + args_batch).min(range.end))
        .collect();
    let mut sent_at: HashMap<String, Instant> = HashMap::new();
    let mut histogram = Histogram::<u64>::new(3)?;
    let mut acknowledged = 0;
    let mut next = 0;
    let mut outstanding = 0;
    while acknowledged < range.len() {
        while outstanding < in_flight && next < batches.len() {
            let batch_id = next.to_string();
            let events = batches[next].clone().map(|n| event(run, n)).collect();
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
        outstanding -= 1;
    }
    Ok((histogram, acknowledged))
}

/// Runs the benchmark and prints the table.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let channel = tonic::transport::Endpoint::from_shared(args.addr.clone())?
        .connect()
        .await
        .with_context(|| format!("connecting to {}", args.addr))?;
    let client = CaptureClient::new(channel).max_decoding_message_size(64 << 20);
    // Distinct identifiers and eventIDs per run, so runs against one database never collide.
    let run = u64::from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .subsec_nanos()
            % 0xffff,
    );
    let per_stream = args.events.div_ceil(args.streams);
    let started = Instant::now();
    let tasks: Vec<_> = (0..args.streams)
        .map(|i| {
            let range = (i * per_stream)..((i + 1) * per_stream).min(args.events);
            tokio::spawn(stream(
                client.clone(),
                run,
                range,
                args.batch,
                args.in_flight,
            ))
        })
        .collect();
    let mut histogram = Histogram::<u64>::new(3)?;
    let mut events = 0;
    for task in tasks {
        let (stream_histogram, acknowledged) = task.await??;
        histogram.add(stream_histogram)?;
        events += acknowledged;
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!("| run | events | batch | streams | events/s | ack p50 ms | ack p99 ms |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    println!(
        "| {} | {events} | {} | {} | {:.0} | {:.1} | {:.1} |",
        args.label,
        args.batch,
        args.streams,
        events as f64 / elapsed,
        histogram.value_at_quantile(0.5) as f64 / 1000.0,
        histogram.value_at_quantile(0.99) as f64 / 1000.0,
    );
    Ok(())
}
