//! `archive export|drop|import`: closed months of events out of the store into files, and
//! back.
//!
//! An archive folder holds one folder per month (`2026-01/`) with:
//! - `events-0001.jsonld.zst`, ...: EPCIS 2.0 JSON-LD documents (zstd), up to
//!   [`EVENTS_PER_FILE`] events each, every event byte for byte as stored;
//! - `events-0001.chain.jsonl.zst`, ...: beside each, one line per event with its store
//!   sequence, store key and hash-chain link (what the document cannot carry);
//! - `manifest.json`, written last: the month's event count, first and last sequence, chain
//!   links before it and at its end, and each file with its SHA-256.
//!
//! `drop` and `import` check every file against the manifest before anything is sent, and
//! the suite checks every event against its own chain before it removes or restores one.

use std::{
    fs::File,
    io::{BufWriter, Read, Write},
    path::{Path, PathBuf},
};

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};
use tokio_stream::StreamExt as _;
use tracery_proto::v1::{
    self as pb, archive_chunk::Part, capture_service_client::CaptureServiceClient,
};
use tracery_runtime::error::ErrorKind;
use tracery_runtime::proto_fields::timestamp;

use super::{Connection, Failure, connect, output::print_json, request};

/// Events per archive document.
pub const EVENTS_PER_FILE: usize = 100_000;
/// Events per message sent back to the suite.
const UPLOAD_BATCH: usize = 1_000;
/// The largest manifest read.
const MAX_MANIFEST_BYTES: u64 = 4 << 20;
/// The largest archive file read, decompressed.
const MAX_FILE_BYTES: u64 = 1 << 30;
/// The manifest's format name.
const FORMAT: &str = "tracery-archive/1";
/// The EPCIS 2.0 JSON-LD context of the documents.
const EPCIS_CONTEXT: &str = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld";

#[derive(Debug, clap::Subcommand)]
pub enum ArchiveCommand {
    /// Writes each closed month before `--before` into `--out` (JSON-LD documents, zstd).
    Export(ExportArgs),
    /// Removes the months before `--before` from the store, once their export in
    /// `--archive` is complete and matches the store event for event.
    Drop(DropArgs),
    /// Puts the dropped months of an archive folder back into the store.
    Import(ImportArgs),
}

#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// The first month not to archive: `YYYY-MM-01` (a month boundary, not in the future).
    #[arg(long)]
    pub before: String,
    /// The archive folder (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub connection: Connection,
}

#[derive(Debug, clap::Args)]
pub struct DropArgs {
    /// The first month to keep: `YYYY-MM-01`.
    #[arg(long)]
    pub before: String,
    /// The archive folder the months were exported to.
    #[arg(long)]
    pub archive: PathBuf,
    #[command(flatten)]
    pub connection: Connection,
}

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The archive folder.
    pub archive: PathBuf,
    #[command(flatten)]
    pub connection: Connection,
}

/// One month's `manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Manifest {
    pub format: String,
    pub month: String,
    pub events: i64,
    pub first_sequence: i64,
    pub last_sequence: i64,
    pub link_before: String,
    pub end_link: String,
    pub exported_at: String,
    pub files: Vec<ManifestFile>,
}

/// One document of a month and its chain file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ManifestFile {
    pub name: String,
    pub sha256: String,
    pub chain: String,
    pub chain_sha256: String,
    pub events: i64,
    pub first_sequence: i64,
    pub last_sequence: i64,
}

/// One line of a chain file.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ChainLine {
    sequence: i64,
    store_key: String,
    link: String,
}

fn bad_input(message: String) -> Failure {
    Failure::new(ErrorKind::InvalidArgument, message)
}

fn io_failure(path: &Path, err: impl std::fmt::Display) -> Failure {
    bad_input(format!("{}: {err}", path.display()))
}

/// `--before` as the instant it names.
fn parse_before(text: &str) -> Result<DateTime<Utc>, Failure> {
    let invalid = || {
        bad_input(format!(
            "--before {text}: give the first of a month, e.g. 2026-01-01"
        ))
    };
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return date
            .and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc())
            .ok_or_else(invalid);
    }
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.to_utc())
        .map_err(|_| invalid())
}

fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// A writer that hashes what goes through it.
struct Hashing<W> {
    inner: W,
    hash: Sha256,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let written = self.inner.write(buf)?;
        self.hash.update(&buf[..written]);
        Ok(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// A zstd file being written, hashed as written.
struct Compressed {
    path: PathBuf,
    encoder: zstd::Encoder<'static, Hashing<BufWriter<File>>>,
}

impl Compressed {
    fn create(path: PathBuf) -> Result<Self, Failure> {
        let file = File::create(&path).map_err(|err| io_failure(&path, err))?;
        let hashing = Hashing {
            inner: BufWriter::new(file),
            hash: Sha256::new(),
        };
        let encoder = zstd::Encoder::new(hashing, 3).map_err(|err| io_failure(&path, err))?;
        Ok(Self { path, encoder })
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), Failure> {
        self.encoder
            .write_all(bytes)
            .map_err(|err| io_failure(&self.path, err))
    }

    /// Finishes the file; returns its SHA-256.
    fn finish(self) -> Result<String, Failure> {
        let path = self.path;
        let mut hashing = self
            .encoder
            .finish()
            .map_err(|err| io_failure(&path, err))?;
        hashing.flush().map_err(|err| io_failure(&path, err))?;
        hashing
            .inner
            .get_ref()
            .sync_all()
            .map_err(|err| io_failure(&path, err))?;
        Ok(hex(&hashing.hash.finalize()))
    }
}

/// One document of a month being written, with its chain file.
struct OpenFile {
    number: usize,
    document: Compressed,
    chain: Compressed,
    events: i64,
    first_sequence: i64,
    last_sequence: i64,
}

impl OpenFile {
    fn create(dir: &Path, number: usize, exported_at: &str) -> Result<Self, Failure> {
        let mut document = Compressed::create(dir.join(document_name(number)))?;
        let opening = format!(
            "{{\"@context\":[\"{EPCIS_CONTEXT}\"],\"type\":\"EPCISDocument\",\
             \"schemaVersion\":\"2.0\",\"creationDate\":\"{exported_at}\",\
             \"epcisBody\":{{\"eventList\":["
        );
        document.write(opening.as_bytes())?;
        Ok(Self {
            number,
            document,
            chain: Compressed::create(dir.join(chain_name(number)))?,
            events: 0,
            first_sequence: 0,
            last_sequence: 0,
        })
    }

    fn add(&mut self, event: &pb::ArchivedEvent) -> Result<(), Failure> {
        if self.events > 0 {
            self.document.write(b",")?;
        } else {
            self.first_sequence = event.sequence;
        }
        self.document.write(event.payload.as_bytes())?;
        let line = ChainLine {
            sequence: event.sequence,
            store_key: event.store_key.clone(),
            link: event.link.clone(),
        };
        let mut text = serde_json::to_string(&line).map_err(|err| bad_input(err.to_string()))?;
        text.push('\n');
        self.chain.write(text.as_bytes())?;
        self.events += 1;
        self.last_sequence = event.sequence;
        Ok(())
    }

    fn finish(mut self) -> Result<ManifestFile, Failure> {
        self.document.write(b"]}}")?;
        Ok(ManifestFile {
            name: document_name(self.number),
            sha256: self.document.finish()?,
            chain: chain_name(self.number),
            chain_sha256: self.chain.finish()?,
            events: self.events,
            first_sequence: self.first_sequence,
            last_sequence: self.last_sequence,
        })
    }
}

fn document_name(number: usize) -> String {
    format!("events-{number:04}.jsonld.zst")
}

fn chain_name(number: usize) -> String {
    format!("events-{number:04}.chain.jsonl.zst")
}

/// A month being exported.
struct MonthWriter {
    dir: PathBuf,
    header: pb::ArchivedMonth,
    exported_at: String,
    files: Vec<ManifestFile>,
    open: Option<OpenFile>,
}

impl MonthWriter {
    fn start(out: &Path, header: pb::ArchivedMonth) -> Result<Self, Failure> {
        let dir = out.join(&header.month);
        std::fs::create_dir_all(&dir).map_err(|err| io_failure(&dir, err))?;
        // A manifest left from an earlier export goes first: it is written again last.
        let manifest = dir.join("manifest.json");
        if manifest.exists() {
            std::fs::remove_file(&manifest).map_err(|err| io_failure(&manifest, err))?;
        }
        Ok(Self {
            dir,
            header,
            exported_at: Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            files: Vec::new(),
            open: None,
        })
    }

    fn add(&mut self, event: &pb::ArchivedEvent) -> Result<(), Failure> {
        if self
            .open
            .as_ref()
            .is_some_and(|open| open.events as usize >= EVENTS_PER_FILE)
            && let Some(full) = self.open.take()
        {
            self.files.push(full.finish()?);
        }
        if self.open.is_none() {
            let number = self.files.len() + 1;
            self.open = Some(OpenFile::create(&self.dir, number, &self.exported_at)?);
        }
        match self.open.as_mut() {
            Some(open) => open.add(event),
            None => Ok(()),
        }
    }

    fn finish(mut self) -> Result<Manifest, Failure> {
        if let Some(open) = self.open.take() {
            self.files.push(open.finish()?);
        }
        let written: i64 = self.files.iter().map(|f| f.events).sum();
        if written != self.header.events {
            return Err(Failure::new(
                ErrorKind::Internal,
                format!(
                    "{}: the suite sent {written} events, its header said {}",
                    self.header.month, self.header.events
                ),
            ));
        }
        let manifest = Manifest {
            format: FORMAT.to_owned(),
            month: self.header.month,
            events: self.header.events,
            first_sequence: self.header.first_sequence,
            last_sequence: self.header.last_sequence,
            link_before: self.header.link_before,
            end_link: self.header.end_link,
            exported_at: self.exported_at,
            files: self.files,
        };
        let path = self.dir.join("manifest.json");
        let temporary = self.dir.join("manifest.json.partial");
        let text =
            serde_json::to_vec_pretty(&manifest).map_err(|err| bad_input(err.to_string()))?;
        std::fs::write(&temporary, text).map_err(|err| io_failure(&temporary, err))?;
        std::fs::rename(&temporary, &path).map_err(|err| io_failure(&path, err))?;
        Ok(manifest)
    }
}

/// Fails unless files can be written in `out` (created if missing).
fn check_writable(out: &Path) -> Result<(), Failure> {
    let cannot = |err: std::io::Error| {
        bad_input(format!(
            "--out {}: cannot write archive files there: {err}",
            out.display()
        ))
    };
    std::fs::create_dir_all(out).map_err(cannot)?;
    let probe = out.join(".tracery-archive-probe");
    std::fs::write(&probe, b"").map_err(cannot)?;
    std::fs::remove_file(&probe).map_err(cannot)
}

async fn client(
    connection: &Connection,
) -> Result<CaptureServiceClient<tonic::transport::Channel>, Failure> {
    Ok(CaptureServiceClient::new(connect(connection).await?)
        .max_decoding_message_size(64 << 20)
        .max_encoding_message_size(64 << 20))
}

/// `archive export`.
pub async fn export(args: ExportArgs) -> Result<(), Failure> {
    let before = parse_before(&args.before)?;
    check_writable(&args.out)?;
    let mut client = client(&args.connection).await?;
    let message = pb::ExportArchiveRequest {
        before: Some(timestamp(before)),
        headers_only: false,
    };
    let mut stream = client
        .export_archive(request(&args.connection, message)?)
        .await?
        .into_inner();
    let mut months = Vec::new();
    let mut writing: Option<MonthWriter> = None;
    while let Some(chunk) = stream.next().await {
        match chunk?.part {
            Some(Part::Month(header)) => {
                if let Some(done) = writing.take() {
                    months.push(done.finish()?);
                }
                writing = Some(MonthWriter::start(&args.out, header)?);
            }
            Some(Part::Events(batch)) => {
                let Some(month) = writing.as_mut() else {
                    return Err(Failure::new(
                        ErrorKind::Internal,
                        "the suite sent events before their month",
                    ));
                };
                for event in &batch.events {
                    month.add(event)?;
                }
            }
            None => {}
        }
    }
    if let Some(done) = writing.take() {
        months.push(done.finish()?);
    }
    report("exported", &months, &args.connection, Some(&args.out));
    Ok(())
}

fn report(done: &str, months: &[Manifest], connection: &Connection, out: Option<&Path>) {
    if connection.json {
        print_json(&serde_json::json!({
            done: months.iter().map(|m| serde_json::json!({
                "month": m.month,
                "events": m.events,
                "firstSequence": m.first_sequence,
                "lastSequence": m.last_sequence,
                "files": m.files.iter().map(|f| f.name.clone()).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        }));
        return;
    }
    if months.is_empty() {
        println!("no month to archive: nothing was {done}");
    }
    for month in months {
        let place = out.map(|out| format!(" to {}", out.join(&month.month).display()));
        println!(
            "{}: {} events {done} (sequences {}..={}, {} files){}",
            month.month,
            month.events,
            month.first_sequence,
            month.last_sequence,
            month.files.len(),
            place.unwrap_or_default()
        );
    }
}

/// Reads a month's manifest from `dir`.
fn read_manifest(dir: &Path) -> Result<Manifest, Failure> {
    let path = dir.join("manifest.json");
    let mut text = String::new();
    File::open(&path)
        .and_then(|file| file.take(MAX_MANIFEST_BYTES + 1).read_to_string(&mut text))
        .map_err(|err| io_failure(&path, err))?;
    if text.len() as u64 > MAX_MANIFEST_BYTES {
        return Err(io_failure(
            &path,
            "larger than any manifest this suite writes",
        ));
    }
    let manifest: Manifest = serde_json::from_str(&text)
        .map_err(|err| io_failure(&path, format!("not a manifest: {err}")))?;
    if manifest.format != FORMAT {
        return Err(io_failure(
            &path,
            format!("format `{}`, this suite reads `{FORMAT}`", manifest.format),
        ));
    }
    let named_dir = dir.file_name().and_then(|n| n.to_str()) == Some(manifest.month.as_str());
    let safe_names = manifest.files.iter().all(|f| {
        [&f.name, &f.chain]
            .iter()
            .all(|name| !name.contains(['/', '\\']) && !name.starts_with('.'))
    });
    if !named_dir || !safe_names {
        return Err(io_failure(
            &path,
            "its month or file names do not match the folder it is in",
        ));
    }
    Ok(manifest)
}

/// The month folders of `archive` that hold a manifest, oldest first.
fn archived_months(archive: &Path) -> Result<Vec<(PathBuf, Manifest)>, Failure> {
    let entries = std::fs::read_dir(archive).map_err(|err| io_failure(archive, err))?;
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.join("manifest.json").is_file())
        .collect();
    dirs.sort();
    dirs.into_iter()
        .map(|dir| read_manifest(&dir).map(|manifest| (dir, manifest)))
        .collect()
}

/// The SHA-256 of the file at `path`, which must be `expected`.
fn check_digest(path: &Path, expected: &str) -> Result<(), Failure> {
    let mut file = File::open(path).map_err(|err| {
        bad_input(format!(
            "archive file {} cannot be read: {err}; nothing was changed",
            path.display()
        ))
    })?;
    let mut hash = Sha256::new();
    let mut buffer = vec![0; 1 << 16];
    loop {
        let read = file
            .read(&mut buffer)
            .map_err(|err| io_failure(path, err))?;
        if read == 0 {
            break;
        }
        hash.update(&buffer[..read]);
    }
    if hex(&hash.finalize()) != expected {
        return Err(bad_input(format!(
            "archive file {} does not match the SHA-256 its manifest gives: it was changed or \
             damaged; nothing was changed",
            path.display()
        )));
    }
    Ok(())
}

/// The decompressed text of the archive file at `path`, bounded.
fn decompressed(path: &Path) -> Result<String, Failure> {
    let file = File::open(path).map_err(|err| io_failure(path, err))?;
    let decoder = zstd::Decoder::new(file).map_err(|err| io_failure(path, err))?;
    let mut text = String::new();
    decoder
        .take(MAX_FILE_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|err| io_failure(path, err))?;
    if text.len() as u64 > MAX_FILE_BYTES {
        return Err(io_failure(path, "decompresses to more than 1 GiB"));
    }
    Ok(text)
}

/// The events of one archive document with their chain lines, as the suite takes them.
fn read_file(dir: &Path, file: &ManifestFile) -> Result<Vec<pb::ArchivedEvent>, Failure> {
    #[derive(Deserialize)]
    struct Document<'a> {
        #[serde(rename = "epcisBody", borrow)]
        body: Body<'a>,
    }
    #[derive(Deserialize)]
    struct Body<'a> {
        #[serde(rename = "eventList", borrow)]
        events: Vec<&'a RawValue>,
    }
    let path = dir.join(&file.name);
    let text = decompressed(&path)?;
    let document: Document<'_> = serde_json::from_str(&text)
        .map_err(|err| io_failure(&path, format!("not an EPCISDocument: {err}")))?;
    let chain_path = dir.join(&file.chain);
    let chain_text = decompressed(&chain_path)?;
    let mut lines = Vec::new();
    for (number, line) in chain_text.lines().enumerate() {
        let line: ChainLine = serde_json::from_str(line)
            .map_err(|err| io_failure(&chain_path, format!("line {}: {err}", number + 1)))?;
        lines.push(line);
    }
    if lines.len() != document.body.events.len() || lines.len() as i64 != file.events {
        return Err(io_failure(
            &path,
            format!(
                "holds {} events and {} chain lines, its manifest says {}",
                document.body.events.len(),
                lines.len(),
                file.events
            ),
        ));
    }
    Ok(lines
        .into_iter()
        .zip(document.body.events)
        .map(|(line, event)| pb::ArchivedEvent {
            sequence: line.sequence,
            store_key: line.store_key,
            link: line.link,
            payload: event.get().to_owned(),
        })
        .collect())
}

/// Checks every file of a month against its manifest's SHA-256 (before anything is sent).
fn check_month(dir: &Path, manifest: &Manifest) -> Result<(), Failure> {
    for file in &manifest.files {
        check_digest(&dir.join(&file.name), &file.sha256)?;
        check_digest(&dir.join(&file.chain), &file.chain_sha256)?;
    }
    Ok(())
}

fn header(manifest: &Manifest) -> pb::ArchivedMonth {
    pb::ArchivedMonth {
        month: manifest.month.clone(),
        events: manifest.events,
        first_sequence: manifest.first_sequence,
        last_sequence: manifest.last_sequence,
        link_before: manifest.link_before.clone(),
        end_link: manifest.end_link.clone(),
        files: manifest
            .files
            .iter()
            .map(|f| pb::ArchiveFile {
                name: format!("{}/{}", manifest.month, f.name),
                sha256: f.sha256.clone(),
                events: f.events,
                first_sequence: f.first_sequence,
                last_sequence: f.last_sequence,
            })
            .collect(),
    }
}

/// Streams `months` (checked already) to the suite: each header, then its events read back
/// from the files, a file at a time.
fn upload(
    months: Vec<(PathBuf, Manifest)>,
) -> (
    tokio_stream::wrappers::ReceiverStream<pb::ArchiveChunk>,
    tokio::task::JoinHandle<Result<(), Failure>>,
) {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let reading = tokio::task::spawn_blocking(move || {
        for (dir, manifest) in months {
            let month = Part::Month(header(&manifest));
            if tx
                .blocking_send(pb::ArchiveChunk { part: Some(month) })
                .is_err()
            {
                return Ok(());
            }
            for file in &manifest.files {
                let events = read_file(&dir, file)?;
                let mut events = events.into_iter().peekable();
                while events.peek().is_some() {
                    let batch = pb::ArchivedEvents {
                        events: events.by_ref().take(UPLOAD_BATCH).collect(),
                    };
                    let chunk = pb::ArchiveChunk {
                        part: Some(Part::Events(batch)),
                    };
                    if tx.blocking_send(chunk).is_err() {
                        return Ok(());
                    }
                }
            }
        }
        Ok(())
    });
    (tokio_stream::wrappers::ReceiverStream::new(rx), reading)
}

/// Sends checked `months` with `call`, reporting a file that failed to read over the
/// suite's answer (which is then only that the stream ended early).
async fn send<F, Fut>(
    months: Vec<(PathBuf, Manifest)>,
    call: F,
) -> Result<Vec<pb::ArchivedMonth>, Failure>
where
    F: FnOnce(tokio_stream::wrappers::ReceiverStream<pb::ArchiveChunk>) -> Fut,
    Fut: std::future::Future<Output = Result<tonic::Response<pb::ArchiveResult>, Failure>>,
{
    let (stream, reading) = upload(months);
    let answer = call(stream).await;
    match reading.await {
        Ok(Ok(())) => {}
        Ok(Err(failure)) => return Err(failure),
        Err(err) => return Err(Failure::new(ErrorKind::Internal, err.to_string())),
    }
    Ok(answer?.into_inner().months)
}

/// `archive drop`.
pub async fn drop_months(args: DropArgs) -> Result<(), Failure> {
    let before = parse_before(&args.before)?;
    let mut client = client(&args.connection).await?;
    let message = pb::ExportArchiveRequest {
        before: Some(timestamp(before)),
        headers_only: true,
    };
    let mut stream = client
        .export_archive(request(&args.connection, message)?)
        .await?
        .into_inner();
    let mut stored = Vec::new();
    while let Some(chunk) = stream.next().await {
        if let Some(Part::Month(month)) = chunk?.part {
            stored.push(month);
        }
    }
    let exported = archived_months(&args.archive)?;
    let mut months = Vec::new();
    for month in &stored {
        let Some((dir, manifest)) = exported.iter().find(|(_, m)| m.month == month.month) else {
            return Err(Failure::new(
                ErrorKind::FailedPrecondition,
                format!(
                    "{}: no export of this month in {} (run `tracery archive export` first); \
                     nothing was dropped",
                    month.month,
                    args.archive.display()
                ),
            ));
        };
        let same = manifest.events == month.events
            && manifest.first_sequence == month.first_sequence
            && manifest.last_sequence == month.last_sequence
            && manifest.link_before == month.link_before
            && manifest.end_link == month.end_link;
        if !same {
            return Err(Failure::new(
                ErrorKind::FailedPrecondition,
                format!(
                    "{}: the export in {} is not the stored month (export it again); nothing \
                     was dropped",
                    month.month,
                    dir.display()
                ),
            ));
        }
        check_month(dir, manifest)?;
        months.push((dir.clone(), manifest.clone()));
    }
    let manifests: Vec<Manifest> = months.iter().map(|(_, m)| m.clone()).collect();
    let connection = args.connection.clone();
    send(months, |stream| async move {
        Ok(client.drop_archived(request(&connection, stream)?).await?)
    })
    .await?;
    report("dropped", &manifests, &args.connection, None);
    Ok(())
}

/// `archive import`.
pub async fn import(args: ImportArgs) -> Result<(), Failure> {
    let months = archived_months(&args.archive)?;
    if months.is_empty() {
        return Err(bad_input(format!(
            "{}: no month folder with a manifest.json",
            args.archive.display()
        )));
    }
    for (dir, manifest) in &months {
        check_month(dir, manifest)?;
    }
    let manifests: Vec<Manifest> = months.iter().map(|(_, m)| m.clone()).collect();
    let mut client = client(&args.connection).await?;
    let connection = args.connection.clone();
    send(months, |stream| async move {
        Ok(client.import_archive(request(&connection, stream)?).await?)
    })
    .await?;
    report("imported", &manifests, &args.connection, None);
    Ok(())
}
