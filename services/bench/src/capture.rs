//! Capture throughput: `--streams` concurrent `CaptureStream` calls, each sending a
//! synthetic plant's events (see [`crate::plant`]) in batches of `--batch` with at most
//! `--in-flight` unacknowledged batches, timing every batch from send to acknowledgement;
//! or, with `--unary`, small unary calls from many clients ([`crate::unary`]).

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::Context as _;
use futures::StreamExt as _;
use hdrhistogram::Histogram;
use tokio::sync::{Semaphore, mpsc};

use crate::{plant::Plant, table};
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
    /// Offered events per second across all streams (0: as fast as acknowledged), for
    /// ack latency at a given load.
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Events of each stream generated but not sent (to resume an interrupted load; events
    /// sent twice are stored once).
    #[arg(long, default_value_t = 0)]
    skip: usize,
    /// Unary `Capture` calls of `--batch` observations each from `--clients` connections
    /// instead of plant streams; with `--rate`, open loop (see [`crate::unary`]).
    #[arg(long)]
    unary: bool,
    /// Connections of the unary mode.
    #[arg(long, default_value_t = 16)]
    clients: usize,
}

/// Runs one stream: returns the latency (µs) of each batch and the events acknowledged.
/// With `pace`, batch `i` is sent at `start + i · pace` (an offered rate, whatever the
/// acknowledgements do); without, as soon as fewer than `in_flight` await theirs.
async fn stream(
    client: CaptureClient<tonic::transport::Channel>,
    plant: Plant,
    batch: usize,
    in_flight: usize,
    pace: Option<Duration>,
) -> anyhow::Result<(Histogram<u64>, usize, usize)> {
    let mut client = client;
    let (sender, receiver) = mpsc::channel(in_flight.max(1));
    let mut responses = client
        .capture_stream(ReceiverStream::new(receiver))
        .await?
        .into_inner();
    // Events are generated as they are sent (10M events would not fit in memory); the
    // total is known once the last batch is taken.
    let total = Arc::new(AtomicUsize::new(usize::MAX));
    let sent_at: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    // Paced streams do not wait for acknowledgements: the offered rate is the point.
    let permits = Arc::new(Semaphore::new(if pace.is_some() {
        1 << 20
    } else {
        in_flight.max(1)
    }));
    let sending = {
        let (sent_at, permits, total) = (
            Arc::clone(&sent_at),
            Arc::clone(&permits),
            Arc::clone(&total),
        );
        tokio::spawn(async move {
            let start = tokio::time::Instant::now();
            let mut plant = plant.peekable();
            let mut taken = 0;
            for index in 0.. {
                let events: Vec<pb::EpcisEvent> = plant.by_ref().take(batch.max(1)).collect();
                if events.is_empty() {
                    break;
                }
                taken += events.len();
                if plant.peek().is_none() {
                    total.store(taken, Ordering::SeqCst);
                }
                if let Some(pace) = pace {
                    tokio::time::sleep_until(start + pace * index as u32).await;
                }
                let permit = permits.acquire().await?;
                permit.forget();
                let batch_id = index.to_string();
                if let Ok(mut sent) = sent_at.lock() {
                    sent.insert(batch_id.clone(), Instant::now());
                }
                sender
                    .send(pb::CaptureStreamRequest { batch_id, events })
                    .await
                    .context("stream closed")?;
            }
            anyhow::Ok(sender)
        })
    };
    let mut histogram = Histogram::<u64>::new(3)?;
    let mut acknowledged = 0;
    let mut quarantined = 0;
    while acknowledged < total.load(Ordering::SeqCst) {
        let ack = responses
            .next()
            .await
            .context("server ended the stream")??;
        let started = sent_at
            .lock()
            .ok()
            .and_then(|mut sent| sent.remove(&ack.batch_id));
        if let Some(started) = started {
            histogram.record(started.elapsed().as_micros() as u64)?;
        }
        acknowledged += ack.results.len();
        quarantined += ack
            .results
            .iter()
            .filter(|r| r.outcome == pb::CaptureOutcome::Quarantined as i32)
            .count();
        permits.add_permits(1);
    }
    drop(sending.await??);
    Ok((histogram, acknowledged, quarantined))
}

/// Runs the benchmark and prints the table.
pub async fn run(args: Args) -> anyhow::Result<()> {
    if args.unary {
        return crate::unary::run(crate::unary::Load {
            addr: args.addr,
            events: args.events,
            batch: args.batch,
            clients: args.clients,
            rate: args.rate,
            label: args.label,
        })
        .await;
    }
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
    // Each stream offers its share of --rate, one batch at a time.
    let pace = (args.rate > 0).then(|| {
        Duration::from_secs_f64(args.batch as f64 * args.streams as f64 / args.rate as f64)
    });
    let started = Instant::now();
    let tasks: Vec<_> = (0..args.streams)
        .map(|i| {
            let mut plant = Plant::new(args.seed + i as u64, per_stream);
            plant.by_ref().take(args.skip).for_each(drop);
            tokio::spawn(stream(
                client.clone(),
                plant,
                args.batch,
                args.in_flight,
                pace,
            ))
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
    table::print(
        &[
            "run",
            "events",
            "batch",
            "streams",
            "events/s",
            "ack p50 ms",
            "ack p99 ms",
            "quarantined",
        ],
        &[
            args.label.clone(),
            events.to_string(),
            args.batch.to_string(),
            args.streams.to_string(),
            table::per_second(events, elapsed),
            table::ms(&histogram, 0.5),
            table::ms(&histogram, 0.99),
            quarantined.to_string(),
        ],
    );
    Ok(())
}
