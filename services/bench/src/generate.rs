//! Writes a synthetic plant as EPCIS 2.0 JSON-LD files (EPCISDocuments of `--per-file`
//! events), one plant per seed as `capture` streams it, for loading by other tools or by
//! `POST /capture`. Events are written as they are generated: 10M fit in little memory.

use std::{io::Write as _, path::PathBuf};

use anyhow::Context as _;

use crate::plant::{self, Plant};

/// Options of `tracery-bench generate`.
#[derive(clap::Args)]
pub struct Args {
    /// The folder to write into (created if missing).
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value_t = 100_000)]
    events: usize,
    /// Plants (seeds `--seed` … `--seed + --streams - 1`), as `capture --streams`.
    #[arg(long, default_value_t = 1)]
    streams: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Events per document.
    #[arg(long, default_value_t = 10_000)]
    per_file: usize,
}

/// Writes the files and prints how many.
pub fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.seed + args.streams as u64 <= 10,
        "seeds 0 to 9 only: lower --seed or --streams"
    );
    anyhow::ensure!(args.per_file > 0, "--per-file must be at least 1");
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let per_stream = args.events.div_ceil(args.streams);
    let mut files = 0;
    for stream in 0..args.streams as u64 {
        let seed = args.seed + stream;
        let mut chunk = Vec::with_capacity(args.per_file);
        let mut plant = Plant::new(seed, per_stream).peekable();
        let mut part = 0;
        while let Some(event) = plant.next() {
            chunk.push(plant::event_json(&event)?);
            if chunk.len() == args.per_file || plant.peek().is_none() {
                part += 1;
                let path = args.out.join(format!("plant-{seed}-{part:05}.jsonld"));
                let mut file = std::io::BufWriter::new(
                    std::fs::File::create(&path)
                        .with_context(|| format!("creating {}", path.display()))?,
                );
                serde_json::to_writer(&mut file, &plant::document(&chunk))?;
                file.flush()?;
                chunk.clear();
                files += 1;
            }
        }
    }
    println!(
        "wrote {} events in {files} files to {}",
        per_stream * args.streams,
        args.out.display()
    );
    Ok(())
}
