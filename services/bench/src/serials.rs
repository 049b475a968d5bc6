//! Serial allocation: `--clients` concurrent clients each allocating `--per-request`
//! serials per call from one sequential pool until `--serials` are handed out; every
//! serial is expanded and checked, and duplicates are counted (there must be none).

use std::{collections::HashSet, time::Instant};

use anyhow::Context as _;
use futures::StreamExt as _;
use tracery_proto::v1::{self as pb, identity_service_client::IdentityServiceClient};

use crate::table;

/// Options of `tracery-bench serials`.
#[derive(clap::Args)]
pub struct Args {
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    addr: String,
    /// Serials in total.
    #[arg(long, default_value_t = 10_000_000)]
    serials: u64,
    /// Serials per AllocateSerials call.
    #[arg(long, default_value_t = 100_000)]
    per_request: u64,
    #[arg(long, default_value_t = 1)]
    clients: u64,
    #[arg(long, default_value = "")]
    label: String,
}

/// The serial numbers of a response, ranges expanded.
fn expand(response: pb::AllocateSerialsResponse) -> anyhow::Result<Vec<u64>> {
    let mut out = Vec::new();
    for range in response.ranges {
        let first: u64 = range.first.parse().context("numeric serial")?;
        out.extend(first..first + range.count);
    }
    for serial in response.serials {
        out.push(serial.parse().context("numeric serial")?);
    }
    Ok(out)
}

/// Runs the benchmark and prints the table.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let mut client = IdentityServiceClient::connect(args.addr.clone())
        .await
        .with_context(|| format!("connecting to {}", args.addr))?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .subsec_nanos();
    let pool = format!("bench-{nanos}");
    client
        .register_product(pb::RegisterProductRequest {
            product: Some(pb::Product {
                gtin: "09506000134352".into(),
                item_code: "BENCH".into(),
                company_prefix_length: 7,
                ..Default::default()
            }),
        })
        .await?;
    client
        .create_serial_pool(pb::CreateSerialPoolRequest {
            pool: Some(pb::SerialPool {
                name: pool.clone(),
                gtin: "09506000134352".into(),
                format: pb::SerialFormat::Numeric.into(),
                length: 12,
                order: pb::SerialOrder::Sequential.into(),
                ..Default::default()
            }),
        })
        .await?;
    let calls = args.serials.div_ceil(args.per_request);
    let started = Instant::now();
    let tasks: Vec<_> = (0..args.clients)
        .map(|c| {
            let mut client = client.clone();
            let pool = pool.clone();
            let (per_request, clients) = (args.per_request, args.clients);
            tokio::spawn(async move {
                let mut serials = Vec::new();
                for call in (c..calls).step_by(clients as usize) {
                    let mut stream = client
                        .allocate_serials(pb::AllocateSerialsRequest {
                            pool: pool.clone(),
                            count: per_request,
                            request_id: format!("{pool}-{call}"),
                        })
                        .await?
                        .into_inner();
                    while let Some(response) = stream.next().await {
                        serials.extend(expand(response?)?);
                    }
                }
                anyhow::Ok(serials)
            })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await??);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let unique: HashSet<u64> = all.iter().copied().collect();
    table::print(
        &[
            "run",
            "clients",
            "serials",
            "per call",
            "serials/s",
            "duplicates",
        ],
        &[
            args.label.clone(),
            args.clients.to_string(),
            all.len().to_string(),
            args.per_request.to_string(),
            table::per_second(all.len(), elapsed),
            (all.len() - unique.len()).to_string(),
        ],
    );
    Ok(())
}
