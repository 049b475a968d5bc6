//! RFID reader intake: a fixed reader's raw reads, shaped as Zebra IoT Connector events,
//! published to the broker at `--rate` reads per second (open loop: read `i` is due at
//! `start + i / rate`, however the broker keeps up), for `--tags` tags in the field of
//! `--antennas` antennas, each tag staying `--dwell-ms` before a new one takes its place.
//! The suite must run with a reader on `--topic` (see BENCHMARKS.md).
//!
//! Latency is from the time a tag's first read was due to the moment its observation
//! reaches a `Subscribe` stream of the stored events; every tag must be observed once.
//! Reads published but never counted by capture (`tracery_rfid_reads_total`) were lost
//! on the way: a broker whose queue for the suite overflowed drops them.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::Context as _;
use futures::StreamExt as _;
use hdrhistogram::Histogram;
use rumqttc::{AsyncClient, MqttOptions, QoS};
use tracery_proto::v1::{self as pb, capture_service_client::CaptureServiceClient};

use crate::table;

/// Options of `tracery-bench rfid`.
#[derive(clap::Args)]
pub struct Args {
    /// The suite's gRPC address.
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    addr: String,
    /// The broker, host:port.
    #[arg(long, default_value = "127.0.0.1:1883")]
    broker: String,
    /// The reader's topic, as configured in the suite's `[rfid.readers.*]`.
    #[arg(long, default_value = "bench/rfid/dock")]
    topic: String,
    /// Raw reads per second offered.
    #[arg(long, default_value_t = 20_000)]
    rate: u64,
    /// Seconds of load.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Tags in the field at any time.
    #[arg(long, default_value_t = 100)]
    tags: u64,
    #[arg(long, default_value_t = 8)]
    antennas: u64,
    /// How long each tag stays in the field.
    #[arg(long, default_value_t = 2_000)]
    dwell_ms: u64,
    /// The suite's Prometheus metrics, where the reads that reached capture are counted.
    #[arg(long, default_value = "http://127.0.0.1:8080/metrics")]
    metrics: String,
    /// The reader's name in the suite's configuration (`rfid.readers.<name>`).
    #[arg(long, default_value = "dock")]
    reader: String,
    #[arg(long, default_value = "")]
    label: String,
}

/// Raw reads capture has counted from `reader` so far (`tracery_rfid_reads_total`).
async fn reads_received(http: &reqwest::Client, args: &Args) -> anyhow::Result<u64> {
    let text = http
        .get(&args.metrics)
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    let reader = format!("reader=\"{}\"", args.reader);
    Ok(text
        .lines()
        .filter(|line| line.starts_with("tracery_rfid_reads_total{") && line.contains(&reader))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64)
}

/// SGTIN-96 hex of GTIN 04012345111118 with `serial`, and its Digital Link.
fn tag(serial: u64) -> (String, String) {
    let mut bits: u128 = 0x30;
    for (value, width) in [
        (1u64, 3),
        (5, 3),
        (4_012_345, 24),
        (11_111, 20),
        (serial, 38),
    ] {
        bits = (bits << width) | u128::from(value);
    }
    (
        format!("{bits:024X}"),
        format!("https://id.gs1.org/01/04012345111118/21/{serial}"),
    )
}

/// The reads to send: read `i` is of tag `serial` on `antenna`.
fn read_at(args: &Args, run: u64, i: u64) -> (u64, u64) {
    let reads_per_slot = args.rate * args.dwell_ms / 1000 / args.tags.max(1);
    let slot = i % args.tags;
    let generation = i / args.tags / reads_per_slot.max(1);
    let serial = run * 1_000_000_000 + generation * args.tags + slot;
    (serial, 1 + (i / args.tags) % args.antennas)
}

/// Runs the benchmark and prints the table.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs()
        // Serials stay inside SGTIN-96's 38 bits: 200 runs of a billion.
        % 200;
    let (host, port) = args
        .broker
        .rsplit_once(':')
        .context("--broker is host:port")?;
    let mut options = MqttOptions::new(format!("bench-reader-{run}"), host, port.parse()?);
    options.set_inflight(1000);
    let (publisher, mut eventloop) = AsyncClient::new(options, 10_000);
    eventloop.network_options.set_tcp_nodelay(true);
    let pump = tokio::spawn(async move { while eventloop.poll().await.is_ok() {} });

    let due: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let latencies = Arc::new(Mutex::new(Histogram::<u64>::new_with_bounds(
        1,
        600_000_000,
        3,
    )?));
    let mut capture = CaptureServiceClient::connect(args.addr.clone())
        .await
        .with_context(|| format!("connecting to {}", args.addr))?;
    let latest = capture
        .query_events(pb::QueryEventsRequest::default())
        .await?
        .into_inner()
        .events
        .iter()
        .map(|e| e.sequence)
        .max()
        .unwrap_or(0);
    let observed = tokio::spawn(observe(
        capture,
        latest,
        Arc::clone(&due),
        Arc::clone(&latencies),
    ));

    let http = reqwest::Client::new();
    let received_before = reads_received(&http, &args)
        .await
        .with_context(|| format!("reading {}", args.metrics))?;
    let total = args.rate * args.seconds;
    let start = Instant::now();
    let mut errors = 0u64;
    let mut serials = std::collections::HashSet::new();
    for i in 0..total {
        let scheduled = start + Duration::from_nanos(i * 1_000_000_000 / args.rate);
        tokio::time::sleep_until(scheduled.into()).await;
        let (serial, antenna) = read_at(&args, run, i);
        let (hex, link) = tag(serial);
        if serials.insert(serial) {
            due.lock()
                .map_err(|_| anyhow::anyhow!("poisoned"))?
                .insert(link, scheduled);
        }
        let message = format!(
            r#"{{"type":"INVENTORY","timestamp":"{}","data":{{"antenna":{antenna},"format":"epc","idHex":"{hex}","peakRssi":-50}}}}"#,
            chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3f+0000")
        );
        if publisher
            .publish(args.topic.as_str(), QoS::AtLeastOnce, false, message)
            .await
            .is_err()
        {
            errors += 1;
        }
    }
    let sent_seconds = start.elapsed().as_secs_f64();
    // The last tags' observations follow the last reads by the smoothing and commit.
    tokio::time::sleep(Duration::from_secs(3)).await;
    observed.abort();
    pump.abort();
    let received = reads_received(&http, &args).await? - received_before;
    let latencies = latencies
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?
        .clone();
    table::print(
        &[
            "run",
            "reads offered/s",
            "reads sent/s",
            "publish errors",
            "reads received",
            "lost before capture",
            "tags",
            "observed",
            "p50 ms",
            "p99 ms",
            "max ms",
        ],
        &[
            args.label,
            args.rate.to_string(),
            table::per_second(total as usize, sent_seconds),
            errors.to_string(),
            received.to_string(),
            (total - errors).saturating_sub(received).to_string(),
            serials.len().to_string(),
            latencies.len().to_string(),
            table::ms(&latencies, 0.5),
            table::ms(&latencies, 0.99),
            format!("{:.1}", latencies.max() as f64 / 1000.0),
        ],
    );
    Ok(())
}

/// Follows the stored events, timing each tag's first observation (a tag observed again
/// is not timed again).
async fn observe(
    mut capture: CaptureServiceClient<tonic::transport::Channel>,
    after: i64,
    due: Arc<Mutex<HashMap<String, Instant>>>,
    latencies: Arc<Mutex<Histogram<u64>>>,
) -> anyhow::Result<()> {
    let mut events = capture
        .subscribe(pb::SubscribeRequest {
            after_sequence: after,
            filter: None,
        })
        .await?
        .into_inner();
    while let Some(message) = events.next().await {
        let Some(event) = message?.event.and_then(|s| s.event) else {
            continue;
        };
        let Some(pb::epcis_event::Body::ObjectEvent(object)) = event.body else {
            continue;
        };
        let now = Instant::now();
        for epc in object.epcs {
            let scheduled = due.lock().ok().and_then(|mut due| due.remove(&epc));
            if let (Some(scheduled), Ok(mut latencies)) = (scheduled, latencies.lock()) {
                let _ = latencies.record(now.duration_since(scheduled).as_micros() as u64);
            }
        }
    }
    Ok(())
}
