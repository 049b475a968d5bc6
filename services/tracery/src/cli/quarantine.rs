//! `quarantine list|show|resubmit|discard`.

use serde_json::{Value, json};
use tracery_proto::v1::{self as pb, capture_service_client::CaptureServiceClient};
use tracery_runtime::error::ErrorKind;

use crate::views;

use super::{
    Connection, Failure, connect,
    output::{self, print_json, table, time},
    request,
};

#[derive(Debug, clap::Subcommand)]
pub enum QuarantineCommand {
    /// Every event waiting in quarantine, with its first reason.
    List(ListArgs),
    /// One entry: every reason and the payload as received.
    Show(EntryArgs),
    /// Validates the entry again (after the cause was fixed, or as corrected) and stores it
    /// if it passes.
    Resubmit(ResubmitArgs),
    /// Closes the entry without storing the event.
    Discard(DiscardArgs),
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub connection: Connection,
}

#[derive(Debug, clap::Args)]
pub struct EntryArgs {
    /// The quarantine entry id.
    pub id: String,
    #[command(flatten)]
    pub connection: Connection,
}

#[derive(Debug, clap::Args)]
pub struct ResubmitArgs {
    /// The quarantine entry id.
    pub id: String,
    /// The corrected event: an EPCIS JSON-LD event (as `show` prints it, edited), or a
    /// document holding just that event.
    #[arg(long)]
    pub corrected: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub connection: Connection,
}

/// The corrected event in `path`.
fn corrected_event(path: &std::path::Path) -> Result<pb::EpcisEvent, Failure> {
    let bad = |why: String| {
        Failure::new(
            ErrorKind::InvalidArgument,
            format!("{}: {why}", path.display()),
        )
    };
    let text = std::fs::read_to_string(path).map_err(|err| bad(err.to_string()))?;
    let value: Value =
        serde_json::from_str(&text).map_err(|err| bad(format!("not JSON: {err}")))?;
    output::corrected_event(value).map_err(bad)
}

#[derive(Debug, clap::Args)]
pub struct DiscardArgs {
    pub id: String,
    /// Why it is discarded (kept with the entry).
    #[arg(long)]
    pub reason: String,
    #[command(flatten)]
    pub connection: Connection,
}

async fn entries(
    client: &mut CaptureServiceClient<tonic::transport::Channel>,
    connection: &Connection,
) -> Result<Vec<pb::QuarantinedEvent>, Failure> {
    let mut entries = Vec::new();
    let mut token = String::new();
    loop {
        let message = pb::ListQuarantineRequest {
            page: Some(pb::PageRequest {
                page_size: 1000,
                page_token: token.clone(),
            }),
        };
        let page = client
            .list_quarantine(request(connection, message)?)
            .await?
            .into_inner();
        entries.extend(page.entries);
        match page.page.map(|p| p.next_page_token) {
            Some(next) if !next.is_empty() => token = next,
            _ => return Ok(entries),
        }
    }
}

pub async fn run(command: QuarantineCommand) -> Result<(), Failure> {
    match command {
        QuarantineCommand::List(args) => {
            let mut client = CaptureServiceClient::new(connect(&args.connection).await?);
            let entries = entries(&mut client, &args.connection).await?;
            if args.connection.json {
                print_json(&Value::Array(
                    entries
                        .iter()
                        .map(|e| views::quarantined(e, false))
                        .collect(),
                ));
                return Ok(());
            }
            let mut rows = table(&["id", "received", "channel", "reason"]);
            for entry in &entries {
                let first = entry
                    .violations
                    .first()
                    .map(|v| format!("{} {}: {}", v.code, v.field, v.description))
                    .unwrap_or_default();
                rows.add_row(vec![
                    entry.id.clone(),
                    time(entry.receive_time.as_ref()),
                    entry.channel.clone(),
                    first,
                ]);
            }
            println!("{rows}");
            println!("{} in quarantine", entries.len());
            Ok(())
        }
        QuarantineCommand::Show(args) => {
            let mut client = CaptureServiceClient::new(connect(&args.connection).await?);
            let entry = entries(&mut client, &args.connection)
                .await?
                .into_iter()
                .find(|e| e.id == args.id)
                .ok_or_else(|| {
                    Failure::new(
                        ErrorKind::NotFound,
                        format!("no open quarantine entry `{}`", args.id),
                    )
                })?;
            if args.connection.json {
                print_json(&views::quarantined(&entry, true));
                return Ok(());
            }
            let mut rows = table(&["field", "code", "why"]);
            for v in &entry.violations {
                rows.add_row(vec![v.field.clone(), v.code.clone(), v.description.clone()]);
            }
            println!(
                "{} ({}, {})",
                entry.id,
                entry.channel,
                time(entry.receive_time.as_ref())
            );
            println!("{rows}");
            println!("{}", entry.payload);
            Ok(())
        }
        QuarantineCommand::Resubmit(args) => {
            let message = pb::ResubmitQuarantinedRequest {
                id: args.id.clone(),
                corrected: args.corrected.as_deref().map(corrected_event).transpose()?,
            };
            let result = CaptureServiceClient::new(connect(&args.connection).await?)
                .resubmit_quarantined(request(&args.connection, message)?)
                .await?
                .into_inner()
                .result
                .unwrap_or_default();
            let stored = result.outcome != pb::CaptureOutcome::Quarantined as i32;
            if args.connection.json {
                print_json(
                    &json!({"id": args.id, "stored": stored, "sequence": result.sequence,
                    "eventID": result.event_id}),
                );
            } else if stored {
                println!(
                    "{}: stored as {} (sequence {})",
                    args.id, result.event_id, result.sequence
                );
            } else {
                println!("{}: still invalid, kept in quarantine", args.id);
                for v in &result.violations {
                    println!("  {} {}: {}", v.code, v.field, v.description);
                }
            }
            if stored {
                Ok(())
            } else {
                Err(Failure::new(
                    ErrorKind::InvalidArgument,
                    "the event is still invalid",
                ))
            }
        }
        QuarantineCommand::Discard(args) => {
            let message = pb::DiscardQuarantinedRequest {
                id: args.id.clone(),
                reason: args.reason.clone(),
            };
            CaptureServiceClient::new(connect(&args.connection).await?)
                .discard_quarantined(request(&args.connection, message)?)
                .await?;
            if args.connection.json {
                print_json(&json!({"id": args.id, "discarded": true}));
            } else {
                println!("{}: discarded ({})", args.id, args.reason);
            }
            Ok(())
        }
    }
}
