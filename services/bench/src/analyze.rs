//! Common-cause analysis: the synthetic plant with a planted cause (see
//! [`crate::plant::Planted`]) captured into a running suite, then `AnalyzeCommonCause` of
//! its failed units against the rest, timed `--rounds` times, with where the planted cause
//! ranked and its q-value.
//!
//! The base failure rate is set so that about `--failed` units fail; the planted lot's
//! units fail `--lot-factor` times as often (0: no planted lot), line 2 during the planted
//! window `--station-factor` times (0: none).

use std::time::Instant;

use anyhow::Context as _;
use tracery_proto::v1::{
    self as pb, capture_service_client::CaptureServiceClient, epcis_event::Body,
    genealogy_service_client::GenealogyServiceClient,
};

use crate::{
    plant::{Failures, Plant, Planted},
    table,
};

/// Options of `tracery-bench analyze`.
#[derive(clap::Args)]
pub struct Args {
    /// The suite's gRPC address.
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    addr: String,
    /// Events of the plant.
    #[arg(long, default_value_t = 1_000_000)]
    events: usize,
    #[arg(long, default_value_t = 50)]
    seed: u64,
    /// About how many units fail.
    #[arg(long, default_value_t = 1_000)]
    failed: usize,
    #[arg(long, default_value_t = 20.0)]
    lot_factor: f64,
    #[arg(long, default_value_t = 0.0)]
    station_factor: f64,
    /// The plant is already in the suite (same options): analyse only.
    #[arg(long)]
    skip_capture: bool,
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    #[arg(long, default_value = "")]
    label: String,
}

/// Units per event of the synthetic plant (40 units a run of about 20 events).
const UNITS_PER_EVENT: f64 = 2.0;

/// Runs the benchmark and prints the table.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let planted = Planted {
        base_rate: args.failed as f64 / (args.events as f64 * UNITS_PER_EVENT),
        lot_factor: (args.lot_factor > 0.0).then_some(args.lot_factor),
        station_factor: (args.station_factor > 0.0).then_some(args.station_factor),
    };
    let mut plant = Plant::with_failures(args.seed, args.events, Failures::Planted(planted));
    let mut capture = CaptureServiceClient::connect(args.addr.clone())
        .await
        .with_context(|| format!("connecting to {}", args.addr))?
        .max_decoding_message_size(64 << 20);
    let mut failed = Vec::new();
    let mut units = 0usize;
    let mut last = 0;
    let mut batch = Vec::with_capacity(1000);
    let started = Instant::now();
    for event in plant.by_ref() {
        match &event.body {
            Some(Body::TransformationEvent(made)) => units += made.output_epcs.len(),
            Some(Body::ObjectEvent(seen)) if event.disposition == "non_conformant" => {
                failed.extend(seen.epcs.iter().cloned());
            }
            _ => {}
        }
        batch.push(event);
        if batch.len() == 1000 && !args.skip_capture {
            last = last.max(capture_batch(&mut capture, std::mem::take(&mut batch)).await?);
        }
    }
    if !batch.is_empty() && !args.skip_capture {
        last = last.max(capture_batch(&mut capture, batch).await?);
    }
    let captured_seconds = started.elapsed().as_secs_f64();
    let mut genealogy = GenealogyServiceClient::connect(args.addr.clone())
        .await?
        .max_decoding_message_size(64 << 20);
    await_projection(&mut genealogy, last).await?;
    let cause = plant
        .planted_lot
        .clone()
        .map(|lot| tracery_gs1::canonical_uri(&lot).unwrap_or(lot));
    let mut seconds = Vec::new();
    let mut answer = pb::AnalyzeCommonCauseResponse::default();
    for _ in 0..args.rounds {
        let started = Instant::now();
        answer = genealogy
            .analyze_common_cause(pb::AnalyzeCommonCauseRequest {
                failed: failed.clone(),
                ..Default::default()
            })
            .await?
            .into_inner();
        seconds.push(started.elapsed().as_secs_f64());
    }
    let ranked = cause.as_ref().and_then(|cause| {
        answer
            .candidates
            .iter()
            .position(|c| &c.value == cause)
            .map(|at| (at + 1, answer.candidates[at].q_value))
    });
    table::print(
        &[
            "run",
            "events",
            "units",
            "capture s",
            "failed",
            "baseline",
            "tested",
            "analysis s (each round)",
            "verdict",
            "planted lot's rank",
            "its q",
            "first candidate (q)",
        ],
        &[
            args.label,
            args.events.to_string(),
            units.to_string(),
            format!("{captured_seconds:.0}"),
            answer.failed_units.to_string(),
            answer.baseline_units.to_string(),
            answer.candidates_tested.to_string(),
            seconds
                .iter()
                .map(|s| format!("{s:.2}"))
                .collect::<Vec<_>>()
                .join(", "),
            if answer.reason.is_empty() {
                "ranked".to_owned()
            } else {
                format!("inconclusive: {}", answer.reason)
            },
            ranked.map_or("-".to_owned(), |(rank, _)| rank.to_string()),
            ranked.map_or("-".to_owned(), |(_, q)| format!("{q:.1e}")),
            answer.candidates.first().map_or("-".to_owned(), |c| {
                format!("{} `{}` ({:.1e})", c.kind, c.value, c.q_value)
            }),
        ],
    );
    Ok(())
}

/// Captures `events`, returning the highest sequence stored.
async fn capture_batch(
    capture: &mut CaptureServiceClient<tonic::transport::Channel>,
    events: Vec<pb::EpcisEvent>,
) -> anyhow::Result<i64> {
    let results = capture
        .capture(pb::CaptureRequest { events })
        .await?
        .into_inner()
        .results;
    Ok(results.iter().map(|r| r.sequence).max().unwrap_or(0))
}

/// Waits until genealogy has applied `sequence`.
async fn await_projection(
    genealogy: &mut GenealogyServiceClient<tonic::transport::Channel>,
    sequence: i64,
) -> anyhow::Result<()> {
    loop {
        let status = genealogy
            .get_projection_status(pb::GetProjectionStatusRequest {})
            .await?
            .into_inner();
        if status.applied_sequence >= sequence {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}
