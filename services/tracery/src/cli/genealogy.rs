//! `trace back|forward`, `recall`, `analyze`, `history`, `contents`, `where`.

use serde_json::{Value, json};
use tracery_proto::v1::{
    self as pb, capture_service_client::CaptureServiceClient,
    genealogy_service_client::GenealogyServiceClient,
    integration_service_client::IntegrationServiceClient,
};

use crate::{names::NameSources, views};

use super::{
    Connection, Failure, connect,
    output::{self, edge_kind, node_kind, print_json, table, time},
    request,
};

/// `tracery trace back|forward ID`.
#[derive(Debug, clap::Subcommand)]
pub enum TraceCommand {
    /// Where did this come from: inputs, lots, packed contents, suppliers.
    Back(TraceArgs),
    /// Where did this go: outputs, serials of a lot, containers, customers.
    Forward(TraceArgs),
}

#[derive(Debug, clap::Args)]
pub struct TraceArgs {
    /// An EPC URN, Digital Link or element string (as scanned), or a party id.
    pub id: String,
    /// Only so many levels.
    #[arg(long, default_value_t = 0)]
    pub max_depth: i32,
    /// The graph as it stood at this time (RFC 3339).
    #[arg(long)]
    pub as_of: Option<String>,
    #[command(flatten)]
    pub connection: Connection,
}

#[derive(Debug, clap::Args)]
pub struct RecallArgs {
    /// The lot (or any identifier) whose recall scope is wanted.
    pub lot: String,
    /// Only what the lot reached from this time on (RFC 3339).
    #[arg(long)]
    pub since: Option<String>,
    #[command(flatten)]
    pub connection: Connection,
}

#[derive(Debug, clap::Args)]
pub struct HistoryArgs {
    pub id: String,
    #[command(flatten)]
    pub connection: Connection,
}

#[derive(Debug, clap::Args)]
pub struct ContentsArgs {
    pub container: String,
    /// What it held at this time (RFC 3339); now when absent.
    #[arg(long)]
    pub at: Option<String>,
    #[command(flatten)]
    pub connection: Connection,
}

#[derive(Debug, clap::Args)]
pub struct WhereArgs {
    pub id: String,
    #[command(flatten)]
    pub connection: Connection,
}

async fn client(
    connection: &Connection,
) -> Result<GenealogyServiceClient<tonic::transport::Channel>, Failure> {
    Ok(GenealogyServiceClient::new(connect(connection).await?))
}

/// The names of `ids` (see [`crate::names`]).
async fn names_of(connection: &Connection, ids: Vec<String>) -> views::Names {
    let Ok(channel) = connect(connection).await else {
        return views::Names::new();
    };
    let authorization = connection
        .token
        .as_ref()
        .and_then(|token| format!("Bearer {token}").parse().ok());
    let mut sources = NameSources {
        capture: CaptureServiceClient::new(channel.clone()),
        integration: IntegrationServiceClient::new(channel),
        authorization,
    };
    sources.names(ids).await
}

pub async fn trace(command: TraceCommand) -> Result<(), Failure> {
    let (backward, args) = match command {
        TraceCommand::Back(args) => (true, args),
        TraceCommand::Forward(args) => (false, args),
    };
    let message = pb::TraceRequest {
        id: output::identifier(&args.id)?,
        as_of: args
            .as_of
            .as_deref()
            .map(|t| output::parse_time("--as-of", t))
            .transpose()?,
        max_depth: args.max_depth,
        max_nodes: 0,
    };
    let mut client = client(&args.connection).await?;
    let request = request(&args.connection, message)?;
    let trace = if backward {
        client.trace_backward(request).await?
    } else {
        client.trace_forward(request).await?
    }
    .into_inner();
    let names = names_of(&args.connection, views::trace_ids(&trace)).await;
    if args.connection.json {
        print_json(&views::trace(&trace, &names));
        return Ok(());
    }
    let mut nodes = table(&["depth", "kind", "id"]);
    for node in &trace.nodes {
        nodes.add_row(vec![
            node.depth.to_string(),
            node_kind(node.kind).to_owned(),
            views::named(&node.id, &names),
        ]);
    }
    println!("{nodes}");
    let mut edges = table(&["from", "link", "to", "when", "bizStep"]);
    for edge in &trace.edges {
        edges.add_row(vec![
            edge.from.clone(),
            edge_kind(edge.kind).to_owned(),
            edge.to.clone(),
            time(edge.event_time.as_ref()),
            edge.biz_step.clone(),
        ]);
    }
    println!("{edges}");
    println!(
        "{} nodes, {} links{}",
        trace.nodes.len(),
        trace.edges.len(),
        if trace.truncated {
            " (truncated: raise --max-depth)"
        } else {
            ""
        }
    );
    Ok(())
}

pub async fn recall(args: RecallArgs) -> Result<(), Failure> {
    let message = pb::RecallScopeRequest {
        ids: vec![output::identifier(&args.lot)?],
        window_start: args
            .since
            .as_deref()
            .map(|t| output::parse_time("--since", t))
            .transpose()?,
        ..Default::default()
    };
    let scope = client(&args.connection)
        .await?
        .recall_scope(request(&args.connection, message)?)
        .await?
        .into_inner();
    let names = views::RecallNames::new(
        names_of(&args.connection, views::recall_name_ids(&scope.items)).await,
    );
    if args.connection.json {
        print_json(&views::recall(&scope, &names));
        return Ok(());
    }
    let rows: Vec<[String; 9]> = scope
        .items
        .iter()
        .map(|item| views::recall_row(item, &names))
        .collect();
    // A name column nothing has a name in is left out of the terminal's table.
    let shown: Vec<usize> = (0..views::RECALL_COLUMNS.len())
        .filter(|&column| {
            !views::RECALL_COLUMNS[column].ends_with("name")
                || rows.iter().any(|row| !row[column].is_empty())
        })
        .collect();
    let header: Vec<&str> = shown.iter().map(|&c| views::RECALL_COLUMNS[c]).collect();
    let mut items = table(&header);
    for row in &rows {
        items.add_row(shown.iter().map(|&c| row[c].clone()).collect::<Vec<_>>());
    }
    println!("{items}");
    for (title, counts) in [
        ("by location", &scope.by_location),
        ("by disposition", &scope.by_disposition),
        ("by custodian", &scope.by_custodian),
    ] {
        let mut grouped = table(&[title, "items"]);
        for group in counts {
            grouped.add_row(vec![group.key.clone(), group.count.to_string()]);
        }
        println!("{grouped}");
    }
    println!(
        "{} affected{}",
        scope.items.len(),
        if scope.truncated { " (truncated)" } else { "" }
    );
    Ok(())
}

pub async fn history(args: HistoryArgs) -> Result<(), Failure> {
    let id = output::identifier(&args.id)?;
    let mut client = client(&args.connection).await?;
    let mut entries = Vec::new();
    let mut token = String::new();
    loop {
        let message = pb::HistoryRequest {
            id: id.clone(),
            page: Some(pb::PageRequest {
                page_size: 500,
                page_token: token.clone(),
            }),
        };
        let page = client
            .history(request(&args.connection, message)?)
            .await?
            .into_inner();
        entries.extend(page.entries);
        match page.page.map(|p| p.next_page_token) {
            Some(next) if !next.is_empty() => token = next,
            _ => break,
        }
    }
    let names = names_of(&args.connection, views::history_places(&entries)).await;
    if args.connection.json {
        print_json(&views::history(&entries, &names));
        return Ok(());
    }
    let mut rows = table(&["when", "event", "bizStep", "disposition", "readPoint"]);
    for entry in &entries {
        rows.add_row(vec![
            time(entry.event_time.as_ref()),
            entry.event_type.clone(),
            entry.biz_step.clone(),
            entry.disposition.clone(),
            views::named(&entry.read_point, &names),
        ]);
    }
    println!("{rows}");
    println!("{} events touched {id}", entries.len());
    Ok(())
}

pub async fn contents(args: ContentsArgs) -> Result<(), Failure> {
    let message = pb::ContentsRequest {
        container: output::identifier(&args.container)?,
        at: args
            .at
            .as_deref()
            .map(|t| output::parse_time("--at", t))
            .transpose()?,
    };
    let root = client(&args.connection)
        .await?
        .contents(request(&args.connection, message)?)
        .await?
        .into_inner()
        .root
        .unwrap_or_default();
    fn to_json(node: &pb::ContainmentNode) -> Value {
        json!({
            "id": node.id, "packed": time(node.packed_time.as_ref()),
            "children": node.children.iter().map(to_json).collect::<Vec<Value>>(),
        })
    }
    if args.connection.json {
        print_json(&to_json(&root));
        return Ok(());
    }
    fn print(node: &pb::ContainmentNode, depth: usize) -> usize {
        println!("{}{}", "  ".repeat(depth), node.id);
        1 + node
            .children
            .iter()
            .map(|child| print(child, depth + 1))
            .sum::<usize>()
    }
    let count = print(&root, 0) - 1;
    println!("{count} items inside");
    Ok(())
}

pub async fn where_is(args: WhereArgs) -> Result<(), Failure> {
    let message = pb::WhereIsRequest {
        id: output::identifier(&args.id)?,
    };
    let found = client(&args.connection)
        .await?
        .where_is(request(&args.connection, message)?)
        .await?
        .into_inner();
    if args.connection.json {
        print_json(&views::where_is(&found));
        return Ok(());
    }
    let mut rows = table(&[]);
    for (label, value) in [
        ("id", found.id.clone()),
        ("location", found.location.clone()),
        ("read point", found.read_point.clone()),
        ("disposition", found.disposition.clone()),
        ("container", found.container.clone()),
        ("custodian", found.custodian.clone()),
        ("last event", found.last_event_id.clone()),
        ("last seen", time(found.last_event_time.as_ref())),
    ] {
        rows.add_row(vec![label.to_owned(), value]);
    }
    println!("{rows}");
    Ok(())
}

/// `tracery analyze`: what the failed units have in common.
#[derive(Debug, clap::Args)]
pub struct AnalyzeArgs {
    /// The failed units, as scanned; with `--failed-file`, more from a file.
    pub failed: Vec<String>,
    /// A file of failed units, one per line (`-`: standard input).
    #[arg(long)]
    pub failed_file: Option<std::path::PathBuf>,
    /// Instead of listing them: the units events with this disposition name
    /// (non_conformant, damaged, returned, ...); repeatable.
    #[arg(long = "disposition")]
    pub dispositions: Vec<String>,
    /// Instead of listing them: the units events with this bizStep name; repeatable.
    #[arg(long = "biz-step")]
    pub biz_steps: Vec<String>,
    /// With a selection: from this time (RFC 3339).
    #[arg(long)]
    pub from: Option<String>,
    /// With a selection: until this time (RFC 3339); now when absent.
    #[arg(long)]
    pub until: Option<String>,
    /// With a selection: only units of this GTIN (as scanned).
    #[arg(long)]
    pub product: Option<String>,
    /// A file of good units to compare with, one per line; by default the same products
    /// first seen in the hours the failed units were.
    #[arg(long)]
    pub baseline_file: Option<std::path::PathBuf>,
    /// The false discovery rate at which a candidate counts.
    #[arg(long, default_value_t = 0.05)]
    pub significance: f64,
    /// Hours (UTC) at which shifts start.
    #[arg(long, value_delimiter = ',', default_value = "6,14,22")]
    pub shifts: Vec<i32>,
    /// Bounds of a sensor reading, `TYPE=MIN..MAX[,UOM]` (either end may be left out):
    /// units with a reading beyond them have it in common; repeatable.
    #[arg(long = "sensor-bound")]
    pub sensor_bounds: Vec<String>,
    #[command(flatten)]
    pub connection: Connection,
}

/// Identifiers one per line (blank lines skipped) from `path`, `-` being standard input.
fn identifiers_in(path: &std::path::Path) -> Result<Vec<String>, Failure> {
    let text = if path.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin())
    } else {
        std::fs::read_to_string(path)
    }
    .map_err(|err| {
        Failure::new(
            tracery_runtime::error::ErrorKind::InvalidArgument,
            format!("{}: {err}", path.display()),
        )
    })?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(str::to_owned)
        .collect())
}

pub async fn analyze(args: AnalyzeArgs) -> Result<(), Failure> {
    let mut failed = args.failed.clone();
    if let Some(path) = &args.failed_file {
        failed.extend(identifiers_in(path)?);
    }
    let baseline = match &args.baseline_file {
        Some(path) => identifiers_in(path)?,
        None => Vec::new(),
    };
    let selection = output::failed_selection(
        args.dispositions.clone(),
        args.biz_steps.clone(),
        [
            ("--from", args.from.as_deref()),
            ("--until", args.until.as_deref()),
        ],
        args.product.clone(),
    )?;
    let message = pb::AnalyzeCommonCauseRequest {
        failed,
        baseline,
        selection,
        significance: args.significance,
        shift_starts: args.shifts.clone(),
        max_candidates: 0,
        sensor_bounds: output::sensor_bounds("--sensor-bound", &args.sensor_bounds)?,
    };
    let answer = client(&args.connection)
        .await?
        .analyze_common_cause(request(&args.connection, message)?)
        .await?
        .into_inner();
    if args.connection.json {
        print_json(&views::common_cause(&answer));
        return Ok(());
    }
    for refused in &answer.refused {
        eprintln!(
            "{}: `{}` left out: {}",
            refused.field, refused.written, refused.reason
        );
    }
    println!(
        "{} failed units against {} good ones; {} attribute values tested",
        answer.failed_units, answer.baseline_units, answer.candidates_tested
    );
    if answer.verdict == pb::CauseVerdict::Inconclusive as i32 {
        println!("inconclusive: {}", answer.reason);
        return Ok(());
    }
    let mut ranked = table(&[
        "group",
        "kind",
        "value",
        "failed with",
        "good with",
        "q",
        "relative risk (95%)",
        "first seen",
    ]);
    for candidate in &answer.candidates {
        ranked.add_row(views::common_cause_row(candidate));
    }
    println!("{ranked}");
    if answer.candidates.iter().any(|c| c.indistinguishable) {
        println!(
            "candidates sharing a group were held by the same units: the data cannot tell them apart"
        );
    }
    Ok(())
}
