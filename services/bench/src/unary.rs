//! Unary capture: `--clients` connections each sending small `Capture` calls (`--batch`
//! events, default one), as line PCs and scanners do.
//!
//! Closed loop (`--rate 0`): each client sends its next call when the last is answered;
//! the figure is throughput. Open loop (`--rate N`): call `i` is scheduled at
//! `start + i / N` whatever the answers do, and its latency runs from that scheduled time,
//! so a stalled server shows as latency instead of silently slowing the load (no
//! coordinated omission). Calls are dealt to the clients in turn.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::Context as _;
use hdrhistogram::Histogram;
use tonic::transport::Channel;
use tracery_proto::v1::{
    self as pb, capture_service_client::CaptureServiceClient as CaptureClient,
};

/// What the unary mode needs from `tracery-bench capture`'s options.
pub struct Load {
    pub addr: String,
    pub events: usize,
    pub batch: usize,
    pub clients: usize,
    pub rate: u64,
    pub label: String,
}

/// Latencies and outcomes, shared by the calls in flight.
#[derive(Default)]
struct Tally {
    latencies: Option<Histogram<u64>>,
    accepted_events: usize,
    errors: BTreeMap<String, usize>,
}

impl Tally {
    fn record(&mut self, latency: Duration, answer: Result<usize, tonic::Status>) {
        match answer {
            Ok(events) => {
                self.accepted_events += events;
                if let Some(histogram) = &mut self.latencies {
                    // Saturates at the histogram's top rather than failing the run.
                    histogram.saturating_record(latency.as_micros() as u64);
                }
            }
            Err(status) => {
                *self
                    .errors
                    .entry(format!("{:?}", status.code()))
                    .or_default() += 1
            }
        }
    }
}

/// A simple observation of a unique serial: each call stores new events.
fn observation(call: usize, index: usize) -> pb::EpcisEvent {
    pb::EpcisEvent {
        event_id: format!(
            "urn:uuid:00000000-0000-4000-{:04x}-{:012x}",
            0x8000 | (index & 0x0fff),
            call
        ),
        event_time: Some(prost_types::Timestamp {
            seconds: 1_795_651_200 + call as i64,
            nanos: 0,
        }),
        event_time_zone_offset: "+00:00".to_owned(),
        biz_step: "inspecting".to_owned(),
        read_point: Some(pb::Location {
            id: "urn:epc:id:sgln:4012345.00003.1".to_owned(),
            extensions: None,
        }),
        body: Some(pb::epcis_event::Body::ObjectEvent(pb::ObjectEvent {
            action: pb::Action::Observe.into(),
            epcs: vec![format!("urn:epc:id:sgtin:4012345.011111.U{call}x{index}")],
            ..Default::default()
        })),
        ..Default::default()
    }
}

fn request(call: usize, batch: usize) -> pb::CaptureRequest {
    pb::CaptureRequest {
        events: (0..batch).map(|index| observation(call, index)).collect(),
    }
}

async fn send(
    mut client: CaptureClient<Channel>,
    call: usize,
    batch: usize,
) -> Result<usize, tonic::Status> {
    let results = client
        .capture(request(call, batch))
        .await?
        .into_inner()
        .results;
    Ok(results.len())
}

/// Closed loop: each client sends its share one call after the other.
async fn closed_loop(clients: Vec<CaptureClient<Channel>>, load: &Load, tally: Arc<Mutex<Tally>>) {
    let calls = load.events.div_ceil(load.batch);
    let count = clients.len();
    let tasks: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(client_index, client)| {
            let (tally, batch) = (Arc::clone(&tally), load.batch);
            tokio::spawn(async move {
                for call in (client_index..calls).step_by(count) {
                    let started = Instant::now();
                    let answer = send(client.clone(), call, batch).await;
                    if let Ok(mut tally) = tally.lock() {
                        tally.record(started.elapsed(), answer);
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        let _ = task.await;
    }
}

/// Open loop: call `i` leaves at its scheduled time; latency counts from then.
async fn open_loop(clients: Vec<CaptureClient<Channel>>, load: &Load, tally: Arc<Mutex<Tally>>) {
    let calls = load.events.div_ceil(load.batch);
    let interval = Duration::from_secs_f64(load.batch as f64 / load.rate as f64);
    let start = tokio::time::Instant::now();
    let mut in_flight = Vec::with_capacity(calls);
    for call in 0..calls {
        let scheduled = start + interval * call as u32;
        tokio::time::sleep_until(scheduled).await;
        let client = clients[call % clients.len()].clone();
        let (tally, batch) = (Arc::clone(&tally), load.batch);
        in_flight.push(tokio::spawn(async move {
            let answer = send(client, call, batch).await;
            if let Ok(mut tally) = tally.lock() {
                tally.record(scheduled.elapsed(), answer);
            }
        }));
    }
    for call in in_flight {
        let _ = call.await;
    }
}

/// Runs the load and prints one table row.
pub async fn run(load: Load) -> anyhow::Result<()> {
    anyhow::ensure!(
        load.batch > 0 && load.clients > 0,
        "--batch and --clients must be > 0"
    );
    let mut clients = Vec::with_capacity(load.clients);
    for _ in 0..load.clients {
        // One connection per client, as separate line PCs have.
        let channel = tonic::transport::Endpoint::from_shared(load.addr.clone())?
            .connect()
            .await
            .with_context(|| format!("connecting to {}", load.addr))?;
        clients.push(CaptureClient::new(channel));
    }
    let tally = Arc::new(Mutex::new(Tally {
        latencies: Some(Histogram::new_with_bounds(1, 120_000_000, 3)?),
        ..Tally::default()
    }));
    let started = Instant::now();
    if load.rate == 0 {
        closed_loop(clients, &load, Arc::clone(&tally)).await;
    } else {
        open_loop(clients, &load, Arc::clone(&tally)).await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let tally = tally
        .lock()
        .map_err(|_| anyhow::anyhow!("a call panicked"))?;
    let histogram = tally.latencies.as_ref().context("histogram")?;
    let quantile = |q: f64| histogram.value_at_quantile(q) as f64 / 1000.0;
    let errors = if tally.errors.is_empty() {
        "0".to_owned()
    } else {
        tally
            .errors
            .iter()
            .map(|(code, n)| format!("{n} {code}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let offered = if load.rate == 0 {
        "closed loop".to_owned()
    } else {
        load.rate.to_string()
    };
    println!(
        "| run | events/call | clients | offered events/s | achieved events/s | ack p50 ms | ack p99 ms | ack p99.9 ms | errors |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---|");
    println!(
        "| {} | {} | {} | {offered} | {:.0} | {:.1} | {:.1} | {:.1} | {errors} |",
        load.label,
        load.batch,
        load.clients,
        tally.accepted_events as f64 / elapsed,
        quantile(0.5),
        quantile(0.99),
        quantile(0.999),
    );
    Ok(())
}
