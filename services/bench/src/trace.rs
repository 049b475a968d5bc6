//! Trace latency: random `TraceBackward` (from finished units), `TraceForward` and
//! `RecallScope` (from supplier lots) against a suite loaded by `tracery-bench capture`
//! with the same `--events`, `--streams` and `--seed`, so the identifiers exist.
//!
//! The baseline runs the same backward traversal as one recursive SQL query
//! (`WITH RECURSIVE`) straight on the projection's own link table. (A baseline over
//! capture's raw tables went with the compact store: its payloads are compressed, so plain
//! SQL can no longer follow a serial to the lot in its `ilmd`.)

use std::time::Instant;

use anyhow::Context as _;
use hdrhistogram::Histogram;
use rand::{Rng, SeedableRng, rngs::SmallRng};
use sea_orm::{ConnectionTrait, Database, DatabaseBackend, Statement};
use tracery_genealogy::store::tables::keys_of;
use tracery_proto::v1::{self as pb, genealogy_service_client::GenealogyServiceClient};

use crate::plant::Plant;

/// Options of `tracery-bench trace`.
#[derive(clap::Args)]
pub struct Args {
    /// The suite's gRPC address.
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    addr: String,
    /// The suite's database, for the recursive-SQL baseline (skipped when absent).
    #[arg(long)]
    database_url: Option<String>,
    /// The `--events`, `--streams` and `--seed` the suite was loaded with.
    #[arg(long, default_value_t = 100_000)]
    events: usize,
    #[arg(long, default_value_t = 4)]
    streams: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Queries of each kind.
    #[arg(long, default_value_t = 500)]
    queries: usize,
    /// Trace depth bound.
    #[arg(long, default_value_t = 10)]
    max_depth: i32,
    #[arg(long, default_value = "")]
    label: String,
}

/// Backward over links (interned node ids): to_node → from_node for transformations (1),
/// containment (2) and receipts (6), from_node → to_node for lot membership (3).
const RECURSIVE_BACKWARD: &str = r#"
WITH RECURSIVE trace(node, depth) AS (
    SELECT id, 0 FROM genealogy_nodes WHERE uri = $1 AND key IN ($2, $3, $4)
  UNION
    SELECT CASE WHEN l.kind = 3 THEN l.to_node ELSE l.from_node END, t.depth + 1
    FROM trace t
    JOIN genealogy_links l
      ON (l.to_node = t.node AND l.kind IN (1, 2, 6))
      OR (l.from_node = t.node AND l.kind = 3)
    WHERE t.depth < $5
)
SELECT COUNT(DISTINCT node) AS nodes FROM trace"#;

/// The recursive baselines in `backend`'s dialect, with their names.
fn baselines(backend: DatabaseBackend) -> Vec<(&'static str, String)> {
    let sql = if backend == DatabaseBackend::Sqlite {
        (1..=5).fold(RECURSIVE_BACKWARD.to_owned(), |sql, n| {
            sql.replace(&format!("${n}"), "?")
        })
    } else {
        RECURSIVE_BACKWARD.to_owned()
    };
    vec![(
        "TraceBackward as WITH RECURSIVE over the projection's links",
        sql,
    )]
}

/// Runs one query of `kind` from `id`; returns how many nodes or items it answered.
async fn query_once(
    client: &mut GenealogyServiceClient<tonic::transport::Channel>,
    kind: &str,
    id: String,
    max_depth: i32,
) -> anyhow::Result<usize> {
    let trace = || pb::TraceRequest {
        id: id.clone(),
        max_depth,
        ..Default::default()
    };
    Ok(match kind {
        "TraceBackward" => client
            .trace_backward(trace())
            .await?
            .into_inner()
            .nodes
            .len(),
        "TraceForward" => client
            .trace_forward(trace())
            .await?
            .into_inner()
            .nodes
            .len(),
        _ => {
            let request = pb::RecallScopeRequest {
                ids: vec![id.clone()],
                ..Default::default()
            };
            client.recall_scope(request).await?.into_inner().items.len()
        }
    })
}

/// Waits until the genealogy projection has applied everything captured (read from the
/// database when given, else until it stops moving), so queries see the whole plant and
/// do not compete with its catching up.
async fn await_projection(
    client: &mut GenealogyServiceClient<tonic::transport::Channel>,
    database_url: Option<&str>,
) -> anyhow::Result<()> {
    let captured = match database_url {
        Some(url) => {
            let db = Database::connect(url).await?;
            let row = db
                .query_one_raw(Statement::from_string(
                    db.get_database_backend(),
                    "SELECT MAX(sequence) AS last FROM capture_events",
                ))
                .await?;
            row.and_then(|r| r.try_get::<Option<i64>>("", "last").ok().flatten())
        }
        None => None,
    };
    let mut last = -1;
    loop {
        let applied = client
            .get_projection_status(pb::GetProjectionStatusRequest {})
            .await?
            .into_inner()
            .applied_sequence;
        let done = match captured {
            Some(captured) => applied >= captured,
            None => applied == last,
        };
        if done {
            return Ok(());
        }
        eprintln!("genealogy projection at sequence {applied} of {captured:?}");
        last = applied;
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    }
}

/// Refreshes PostgreSQL's planner statistics after the load, as autovacuum would: with
/// none, it plans an `IN (…)` over 50 identifiers as a scan of the whole table.
async fn analyze(database_url: &str) -> anyhow::Result<()> {
    let db = Database::connect(database_url).await?;
    if db.get_database_backend() == DatabaseBackend::Postgres {
        db.execute_unprepared("ANALYZE").await?;
    }
    Ok(())
}

fn ms(histogram: &Histogram<u64>, quantile: f64) -> f64 {
    histogram.value_at_quantile(quantile) as f64 / 1000.0
}

/// Runs the benchmark and prints the table.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let per_stream = args.events.div_ceil(args.streams);
    let (mut lots, mut units) = (Vec::new(), Vec::new());
    for i in 0..args.streams {
        let mut plant = Plant::new(args.seed + i as u64, per_stream);
        plant.by_ref().for_each(drop);
        lots.extend(plant.supplier_lots);
        units.extend(plant.units);
    }
    anyhow::ensure!(
        !lots.is_empty() && !units.is_empty(),
        "the plant is too small"
    );
    let mut client = GenealogyServiceClient::connect(args.addr.clone())
        .await
        .with_context(|| format!("connecting to {}", args.addr))?
        .max_decoding_message_size(256 << 20);
    await_projection(&mut client, args.database_url.as_deref()).await?;
    if let Some(url) = &args.database_url {
        analyze(url).await?;
    }
    let mut rng = SmallRng::seed_from_u64(7);
    let mut rows = Vec::new();
    for kind in ["TraceBackward", "TraceForward", "RecallScope"] {
        let mut histogram = Histogram::<u64>::new(3)?;
        let mut nodes = 0usize;
        for _ in 0..args.queries {
            let started = Instant::now();
            let pool = if kind == "TraceBackward" {
                &units
            } else {
                &lots
            };
            let id = pool[rng.random_range(0..pool.len())].clone();
            nodes += query_once(&mut client, kind, id, args.max_depth).await?;
            histogram.record(started.elapsed().as_micros() as u64)?;
        }
        rows.push((kind.to_owned(), histogram, nodes / args.queries.max(1)));
    }
    if let Some(url) = &args.database_url {
        let db = Database::connect(url.as_str()).await?;
        let backend = db.get_database_backend();
        for (name, sql) in baselines(backend) {
            let mut histogram = Histogram::<u64>::new(3)?;
            let mut nodes = 0usize;
            // The same units as TraceBackward above.
            let mut same = SmallRng::seed_from_u64(7);
            for _ in 0..args.queries {
                let id = units[same.random_range(0..units.len())].clone();
                let node = tracery_epcis_node(&id);
                let started = Instant::now();
                let row = db
                    .query_one_raw(Statement::from_sql_and_values(
                        backend,
                        sql.clone(),
                        std::iter::once(node.clone().into())
                            .chain(keys_of(&node).map(Into::into))
                            .chain([args.max_depth.into()])
                            .collect::<Vec<sea_orm::Value>>(),
                    ))
                    .await?;
                histogram.record(started.elapsed().as_micros() as u64)?;
                nodes += row
                    .and_then(|r| r.try_get::<i64>("", "nodes").ok())
                    .unwrap_or_default() as usize;
            }
            rows.push((name.to_owned(), histogram, nodes / args.queries.max(1)));
        }
    }
    println!("| run | query | queries | nodes (mean) | p50 ms | p99 ms |");
    println!("|---|---|---:|---:|---:|---:|");
    for (kind, histogram, nodes) in &rows {
        println!(
            "| {} | {kind} | {} | {nodes} | {:.2} | {:.2} |",
            args.label,
            args.queries,
            ms(histogram, 0.5),
            ms(histogram, 0.99)
        );
    }
    if let Some(ours) = rows.first() {
        for baseline in rows.iter().skip(3) {
            println!(
                "\n{} / TraceBackward: {:.1}x at p50, {:.1}x at p99",
                baseline.0,
                ms(&baseline.1, 0.5) / ms(&ours.1, 0.5).max(0.001),
                ms(&baseline.1, 0.99) / ms(&ours.1, 0.99).max(0.001)
            );
        }
    }
    Ok(())
}

/// The genealogy service's node spelling of an identifier (its canonical Digital Link).
fn tracery_epcis_node(written: &str) -> String {
    tracery_gs1::canonical_uri(written).unwrap_or_else(|| written.to_owned())
}
