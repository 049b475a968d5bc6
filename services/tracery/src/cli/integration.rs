//! `sync run|status`: ERP/PLM synchronisation, and the post-backs that did not go through.

use serde_json::{Value, json};
use tracery_proto::v1::{self as pb, integration_service_client::IntegrationServiceClient};
use tracery_runtime::error::ErrorKind;

use crate::views;

use super::{
    Connection, Failure, connect,
    output::{print_json, table, time},
    request,
};

#[derive(Debug, clap::Subcommand)]
pub enum SyncCommand {
    /// Starts a sync and follows it to the end.
    Run(RunArgs),
    /// The latest sync runs and the dead-letter post-backs.
    Status(StatusArgs),
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// One connector from the plant configuration; all of them when absent.
    pub connector: Option<String>,
    #[command(flatten)]
    pub connection: Connection,
}

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// How many runs, newest first.
    #[arg(long, default_value_t = 10)]
    pub last: i32,
    #[command(flatten)]
    pub connection: Connection,
}

fn connector(run: &pb::SyncRun) -> &str {
    if run.connector.is_empty() {
        "(all)"
    } else {
        &run.connector
    }
}

fn runs_table(runs: &[pb::SyncRun]) -> comfy_table::Table {
    let mut rows = table(&[
        "run",
        "connector",
        "state",
        "fetched",
        "created",
        "updated",
        "unchanged",
        "failed",
        "started",
    ]);
    for run in runs {
        let counts = run.counts.unwrap_or_default();
        rows.add_row(vec![
            run.id.clone(),
            connector(run).to_owned(),
            views::sync_state(run).to_owned(),
            counts.fetched.to_string(),
            counts.created.to_string(),
            counts.updated.to_string(),
            counts.unchanged.to_string(),
            counts.failed.to_string(),
            time(run.start_time.as_ref()),
        ]);
    }
    rows
}

pub async fn run(command: SyncCommand) -> Result<(), Failure> {
    match command {
        SyncCommand::Run(args) => sync_run(args).await,
        SyncCommand::Status(args) => status(args).await,
    }
}

async fn sync_run(args: RunArgs) -> Result<(), Failure> {
    let connection = &args.connection;
    let mut client = IntegrationServiceClient::new(connect(connection).await?);
    let message = pb::TriggerSyncRequest {
        connector: args.connector.clone().unwrap_or_default(),
    };
    let started = client
        .trigger_sync(request(connection, message)?)
        .await?
        .into_inner()
        .run
        .ok_or_else(|| Failure::new(ErrorKind::Internal, "the suite answered without a run"))?;
    let mut progress = client
        .sync_status(request(
            connection,
            pb::SyncStatusRequest {
                run_id: started.id.clone(),
            },
        )?)
        .await?
        .into_inner();
    let mut last = started;
    while let Some(update) = progress.message().await? {
        if let Some(run) = update.run {
            let counts = run.counts.unwrap_or_default();
            eprint!(
                "\r{} {}: {} fetched, {} failed   ",
                connector(&run),
                views::sync_state(&run),
                counts.fetched,
                counts.failed
            );
            last = run;
        }
    }
    eprintln!();
    if connection.json {
        print_json(&views::sync_run(&last));
    } else {
        println!("{}", runs_table(std::slice::from_ref(&last)));
        for error in &last.errors {
            println!("  {error}");
        }
    }
    match pb::SyncRunState::try_from(last.state) {
        Ok(pb::SyncRunState::Succeeded) => Ok(()),
        _ => Err(Failure::new(
            ErrorKind::Internal,
            format!(
                "sync run {} ended {} with {} error(s)",
                last.id,
                views::sync_state(&last),
                last.errors.len()
            ),
        )),
    }
}

async fn status(args: StatusArgs) -> Result<(), Failure> {
    let connection = &args.connection;
    let mut client = IntegrationServiceClient::new(connect(connection).await?);
    let page = |size: i32| {
        Some(pb::PageRequest {
            page_size: size,
            page_token: String::new(),
        })
    };
    let runs = client
        .list_sync_runs(request(
            connection,
            pb::ListSyncRunsRequest {
                page: page(args.last.max(1)),
            },
        )?)
        .await?
        .into_inner()
        .runs;
    let dead = client
        .list_postings(request(
            connection,
            pb::ListPostingsRequest {
                states: vec![pb::PostingState::DeadLetter as i32],
                page: page(1000),
            },
        )?)
        .await?
        .into_inner()
        .postings;
    if connection.json {
        let dead: Vec<Value> = dead.iter().map(views::posting).collect();
        print_json(
            &json!({"runs": runs.iter().map(views::sync_run).collect::<Vec<_>>(),
                           "dead_letter_postings": dead}),
        );
        return Ok(());
    }
    println!("{}", runs_table(&runs));
    if dead.is_empty() {
        println!("no dead-letter post-backs");
        return Ok(());
    }
    let mut rows = table(&["posting", "connector", "order", "attempts", "last error"]);
    for posting in &dead {
        rows.add_row(vec![
            posting.id.clone(),
            posting.connector.clone(),
            posting.order_number.clone(),
            posting.attempts.to_string(),
            posting.last_error.clone(),
        ]);
    }
    println!("{rows}");
    println!("{} dead-letter post-back(s)", dead.len());
    Ok(())
}
