//! `capture FILE…`: EPCIS 2.0 documents (JSON-LD or XML) sent over gRPC in batches, with
//! progress on stderr and a summary of what was stored, repeated or quarantined.

use std::{io::Write as _, path::PathBuf};
use tracery_runtime::error::ErrorKind;

use serde_json::json;
use tracery_proto::v1::{self as pb, capture_service_client::CaptureServiceClient};

use super::{
    Connection, Failure, connect,
    output::{print_json, table},
    request,
};

/// Events per Capture call.
const BATCH: usize = 500;

#[derive(Debug, clap::Args)]
pub struct CaptureArgs {
    /// EPCIS documents: `.json`/`.jsonld` (JSON-LD) or `.xml`.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub connection: Connection,
}

#[derive(Default)]
struct Tally {
    accepted: usize,
    duplicate: usize,
    quarantined: usize,
}

fn events_of(path: &PathBuf) -> Result<Vec<pb::EpcisEvent>, Failure> {
    let text = std::fs::read_to_string(path).map_err(|err| {
        Failure::new(
            ErrorKind::InvalidArgument,
            format!("{}: {err}", path.display()),
        )
    })?;
    let document = if text.trim_start().starts_with('<') {
        tracery_epcis::xml::parse_document(&text)
    } else {
        tracery_epcis::json::parse_document(&text)
    }
    .map_err(|err| {
        Failure::new(
            ErrorKind::InvalidArgument,
            format!("{}: not an EPCIS document: {err}", path.display()),
        )
    })?;
    Ok(document
        .events
        .iter()
        .map(tracery_epcis::proto::event_to_proto)
        .collect())
}

pub async fn run(args: CaptureArgs) -> Result<(), Failure> {
    // Every file is read before anything is sent: a typo in the last file stores nothing.
    let mut files = Vec::new();
    for path in &args.files {
        files.push((path, events_of(path)?));
    }
    let total: usize = files.iter().map(|(_, events)| events.len()).sum();
    let mut client = CaptureServiceClient::new(connect(&args.connection).await?)
        .max_decoding_message_size(64 << 20);
    let mut tallies = Vec::new();
    let mut sent = 0;
    for (path, events) in files {
        let mut tally = Tally::default();
        for batch in events.chunks(BATCH) {
            let message = pb::CaptureRequest {
                events: batch.to_vec(),
            };
            let results = client
                .capture(request(&args.connection, message)?)
                .await?
                .into_inner()
                .results;
            for result in results {
                match pb::CaptureOutcome::try_from(result.outcome) {
                    Ok(pb::CaptureOutcome::Accepted) => tally.accepted += 1,
                    Ok(pb::CaptureOutcome::Duplicate) => tally.duplicate += 1,
                    _ => tally.quarantined += 1,
                }
            }
            sent += batch.len();
            if !args.connection.json {
                eprint!("\rcaptured {sent}/{total} events");
                let _ = std::io::stderr().flush();
            }
        }
        tallies.push((path.display().to_string(), tally));
    }
    if !args.connection.json && total > 0 {
        eprintln!();
    }
    let quarantined: usize = tallies.iter().map(|(_, t)| t.quarantined).sum();
    if args.connection.json {
        print_json(&json!(
            tallies
                .iter()
                .map(|(file, t)| json!({"file": file, "accepted": t.accepted,
                "duplicate": t.duplicate, "quarantined": t.quarantined}))
                .collect::<Vec<_>>()
        ));
    } else {
        let mut rows = table(&["file", "stored", "already stored", "quarantined"]);
        for (file, t) in &tallies {
            rows.add_row(vec![
                file.clone(),
                t.accepted.to_string(),
                t.duplicate.to_string(),
                t.quarantined.to_string(),
            ]);
        }
        println!("{rows}");
        if quarantined > 0 {
            println!("{quarantined} quarantined: see `tracery quarantine list`");
        }
    }
    // Quarantined events are the suite doing its job, but a script must notice them.
    if quarantined > 0 {
        Err(Failure::new(
            ErrorKind::InvalidArgument,
            format!("{quarantined} of {total} events were quarantined"),
        ))
    } else {
        Ok(())
    }
}
