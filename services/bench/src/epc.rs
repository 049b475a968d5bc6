//! EPC hex decoding on one core: `--tags` distinct SGTIN-96 and SGLN-96 hex strings (as
//! readers report them) decoded to pure-identity URNs, `--rounds` times over, on one
//! thread; every decode is checked against the URN the hex was made from.

use std::time::Instant;

use anyhow::{Context as _, ensure};
use tracery_gs1::tds::TagEpc;

use crate::table;

/// Options of `tracery-bench epc`.
#[derive(clap::Args)]
pub struct Args {
    /// Distinct tags (half SGTIN-96, half SGLN-96, company prefixes of 6 to 12 digits).
    #[arg(long, default_value_t = 100_000)]
    tags: u64,
    /// Times each tag is decoded.
    #[arg(long, default_value_t = 50)]
    rounds: u64,
    #[arg(long, default_value = "")]
    label: String,
}

/// The last `width` digits of `n`, zero-padded (empty for 0).
fn digits(n: u64, width: usize) -> String {
    format!("{n:013}")[13 - width..].to_owned()
}

/// The tag URI of tag `n`.
fn tag_uri(n: u64) -> String {
    let cp_digits = 6 + (n % 7) as usize;
    let company = digits(100_000 + n % 100_000, cp_digits);
    if n.is_multiple_of(2) {
        let reference = digits(n % 1000, 13 - cp_digits);
        format!("urn:epc:tag:sgtin-96:1.{company}.{reference}.{n}")
    } else {
        let reference = digits(n % 10, 12 - cp_digits);
        format!("urn:epc:tag:sgln-96:0.{company}.{reference}.{}", n % 5000)
    }
}

/// Runs the benchmark and prints the table.
pub fn run(args: Args) -> anyhow::Result<()> {
    let mut tags = Vec::with_capacity(args.tags as usize);
    for n in 0..args.tags {
        let tag = TagEpc::from_tag_uri(&tag_uri(n)).with_context(|| tag_uri(n))?;
        tags.push((tag.to_hex()?, tag.pure_identity()));
    }
    let started = Instant::now();
    let mut decoded = 0usize;
    let mut wrong = 0usize;
    for _ in 0..args.rounds {
        for (hex, identity) in &tags {
            let tag = TagEpc::from_hex(std::hint::black_box(hex))?;
            wrong += usize::from(tag.pure_identity() != *identity);
            decoded += 1;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    ensure!(wrong == 0, "{wrong} decodes differ from their tag");
    table::print(
        &[
            "run",
            "distinct tags",
            "decodes",
            "seconds",
            "decodes/s (1 core)",
            "wrong",
        ],
        &[
            args.label,
            args.tags.to_string(),
            decoded.to_string(),
            format!("{seconds:.2}"),
            table::per_second(decoded, seconds),
            wrong.to_string(),
        ],
    );
    Ok(())
}
