//! `serials allocate` and `label render`.

use std::io::{IsTerminal as _, Write as _};
use tracery_runtime::error::ErrorKind;

use serde_json::json;
use tracery_proto::v1::{self as pb, identity_service_client::IdentityServiceClient};

use super::{
    Connection, Failure, connect,
    output::{print_json, table},
    request,
};

#[derive(Debug, clap::Subcommand)]
pub enum SerialsCommand {
    /// Hands out N serials from a pool; never the same serial twice.
    Allocate(AllocateArgs),
}

#[derive(Debug, clap::Args)]
pub struct AllocateArgs {
    /// The pool's name.
    pub pool: String,
    /// How many serials (1 to 10,000,000).
    pub count: u64,
    /// Repeating a request id returns the serials it got the first time, so a script
    /// that retries after a lost answer does not burn a second batch.
    #[arg(long)]
    pub request_id: Option<String>,
    #[command(flatten)]
    pub connection: Connection,
}

#[derive(Debug, clap::Subcommand)]
pub enum LabelCommand {
    /// Draws the label for an identifier.
    Render(RenderArgs),
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum LabelFormat {
    Svg,
    Png,
    Zpl,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Symbology {
    /// GS1 DataMatrix carrying the element string.
    Datamatrix,
    /// QR code carrying the GS1 Digital Link.
    Qr,
}

#[derive(Debug, clap::Args)]
pub struct RenderArgs {
    /// An EPC URN, Digital Link or element string.
    pub id: String,
    #[arg(long, value_enum)]
    pub format: LabelFormat,
    #[arg(long, value_enum, default_value = "datamatrix")]
    pub symbology: Symbology,
    /// Write the label to this file instead of standard output.
    #[arg(long, short)]
    pub output: Option<std::path::PathBuf>,
    /// Also encode the label's RFID tag (ZPL printer-encoders) in this TDS scheme
    /// (`sgtin-96`, `sgtin-198`, `sscc-96`, ...; `auto` for the identifier's 96-bit one).
    #[arg(long)]
    pub rfid: Option<String>,
    /// The tag's filter value, 0-7.
    #[arg(long, default_value_t = 0)]
    pub filter: u32,
    #[command(flatten)]
    pub connection: Connection,
}

pub async fn serials(command: SerialsCommand) -> Result<(), Failure> {
    let SerialsCommand::Allocate(args) = command;
    let mut client = IdentityServiceClient::new(connect(&args.connection).await?);
    let message = pb::AllocateSerialsRequest {
        pool: args.pool.clone(),
        count: args.count,
        // A fresh id makes each run of the command a new allocation.
        request_id: args
            .request_id
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
    };
    let mut stream = client
        .allocate_serials(request(&args.connection, message)?)
        .await?
        .into_inner();
    let (mut ranges, mut serials) = (Vec::new(), Vec::new());
    while let Some(batch) = stream.message().await? {
        ranges.extend(batch.ranges);
        serials.extend(batch.serials);
    }
    if args.connection.json {
        let ranges: Vec<_> = ranges
            .iter()
            .map(|r| json!({"first": r.first, "count": r.count}))
            .collect();
        print_json(&json!({"pool": args.pool, "ranges": ranges, "serials": serials}));
        return Ok(());
    }
    if !ranges.is_empty() {
        let mut rows = table(&["first", "count"]);
        for range in &ranges {
            rows.add_row(vec![range.first.clone(), range.count.to_string()]);
        }
        println!("{rows}");
    }
    // Randomised pools hand out single serials: one a line, ready for a label printer.
    for serial in &serials {
        println!("{serial}");
    }
    let total: u64 = ranges.iter().map(|r| r.count).sum::<u64>() + serials.len() as u64;
    eprintln!("{total} serials from pool {}", args.pool);
    Ok(())
}

pub async fn label(command: LabelCommand) -> Result<(), Failure> {
    let LabelCommand::Render(args) = command;
    let format = match args.format {
        LabelFormat::Svg => pb::LabelFormat::Svg,
        LabelFormat::Png => pb::LabelFormat::Png,
        LabelFormat::Zpl => pb::LabelFormat::Zpl,
    };
    let symbology = match args.symbology {
        Symbology::Datamatrix => pb::Symbology::Gs1Datamatrix,
        Symbology::Qr => pb::Symbology::Gs1DigitalLinkQr,
    };
    if matches!(args.format, LabelFormat::Png)
        && args.output.is_none()
        && std::io::stdout().is_terminal()
    {
        return Err(Failure::new(
            ErrorKind::InvalidArgument,
            "a PNG is not for a terminal: give --output FILE or redirect standard output",
        ));
    }
    let mut client = IdentityServiceClient::new(connect(&args.connection).await?);
    let message = pb::RenderLabelRequest {
        identifier: args.id.trim().to_owned(),
        symbology: symbology as i32,
        format: format as i32,
        rfid: args.rfid.as_ref().map(|scheme| pb::RfidEncoding {
            scheme: if scheme == "auto" {
                String::new()
            } else {
                scheme.clone()
            },
            filter: args.filter,
            company_prefix_length: 0,
        }),
    };
    let label = client
        .render_label(request(&args.connection, message)?)
        .await?
        .into_inner();
    let written = match &args.output {
        Some(path) => {
            std::fs::write(path, &label.content).map_err(|err| format!("{}: {err}", path.display()))
        }
        None => std::io::stdout()
            .lock()
            .write_all(&label.content)
            .map_err(|err| format!("standard output: {err}")),
    };
    written.map_err(|message| Failure::new(ErrorKind::Internal, message))?;
    if let Some(path) = &args.output {
        eprintln!(
            "{} ({}, {} bytes)",
            path.display(),
            label.content_type,
            label.content.len()
        );
    }
    if !label.epc_hex.is_empty() {
        eprintln!("RFID tag: {} ({})", label.epc_hex, label.tag_uri);
    }
    Ok(())
}
