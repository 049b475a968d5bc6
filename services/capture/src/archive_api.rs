//! The archive methods of `tracery.v1.CaptureService`: months streamed out for
//! `tracery archive export`, and read back from the archive files for `drop` and `import`
//! (see [`crate::store::archive`]).

use tokio::{sync::mpsc, task::JoinHandle};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Status, Streaming};
use tracery_proto::v1::{self as pb, archive_chunk::Part};

use crate::{
    domain::CaptureError,
    store::{
        EventStore,
        archive::{ArchiveFile, ArchivedEvent, MonthSpan, Restore, UploadCheck, key_hash},
    },
};

/// Events per exported message: well inside gRPC's 4 MiB message limit for plant events.
const EXPORT_BATCH: u64 = 1_000;

/// The stream `ExportArchive` answers with.
pub type ExportStream = ReceiverStream<Result<pb::ArchiveChunk, Status>>;

fn span_to_proto(span: MonthSpan) -> pb::ArchivedMonth {
    pb::ArchivedMonth {
        month: span.month,
        events: span.events,
        first_sequence: span.first_sequence,
        last_sequence: span.last_sequence,
        link_before: span.link_before,
        end_link: span.end_link,
        files: Vec::new(),
    }
}

fn span_from_proto(month: pb::ArchivedMonth) -> (MonthSpan, Vec<ArchiveFile>) {
    let files = month
        .files
        .into_iter()
        .map(|f| ArchiveFile {
            name: f.name,
            sha256: f.sha256,
            events: f.events,
            first_sequence: f.first_sequence,
            last_sequence: f.last_sequence,
        })
        .collect();
    let span = MonthSpan {
        month: month.month,
        events: month.events,
        first_sequence: month.first_sequence,
        last_sequence: month.last_sequence,
        link_before: month.link_before,
        end_link: month.end_link,
    };
    (span, files)
}

fn event_from_proto(event: pb::ArchivedEvent) -> ArchivedEvent {
    ArchivedEvent {
        sequence: event.sequence,
        store_key: event.store_key,
        link: event.link,
        payload: event.payload,
    }
}

/// `ExportArchive`: each closed month before `before`, a header then its events.
pub async fn export(
    store: EventStore,
    request: pb::ExportArchiveRequest,
) -> Result<ExportStream, Status> {
    let before = request.before.ok_or_else(|| CaptureError::Invalid {
        field: "before".to_owned(),
        reason: "required: the first month not to archive".to_owned(),
    })?;
    let before = tracery_epcis::time::from_proto("before", &before)
        .map_err(|err| CaptureError::Invalid {
            field: "before".to_owned(),
            reason: err.to_string(),
        })?
        .to_utc();
    let months = store.archive_months(before).await?;
    let (tx, rx) = mpsc::channel(4);
    let headers_only = request.headers_only;
    tokio::spawn(async move {
        for span in months {
            if let Err(err) = send_month(&store, &tx, span, headers_only).await {
                let _ = tx.send(Err(err.into())).await;
                return;
            }
        }
    });
    Ok(ReceiverStream::new(rx))
}

async fn send_month(
    store: &EventStore,
    tx: &mpsc::Sender<Result<pb::ArchiveChunk, Status>>,
    span: MonthSpan,
    headers_only: bool,
) -> Result<(), CaptureError> {
    let (mut after, last) = (span.first_sequence - 1, span.last_sequence);
    let header = pb::ArchiveChunk {
        part: Some(Part::Month(span_to_proto(span))),
    };
    if tx.send(Ok(header)).await.is_err() || headers_only {
        return Ok(());
    }
    loop {
        let events = store.archived_events(after, last, EXPORT_BATCH).await?;
        let Some(newest) = events.last().map(|e| e.sequence) else {
            return Ok(());
        };
        after = newest;
        let chunk = pb::ArchiveChunk {
            part: Some(Part::Events(pb::ArchivedEvents {
                events: events
                    .into_iter()
                    .map(|e| pb::ArchivedEvent {
                        sequence: e.sequence,
                        store_key: e.store_key,
                        link: e.link,
                        payload: e.payload,
                    })
                    .collect(),
            })),
        };
        if tx.send(Ok(chunk)).await.is_err() {
            return Ok(());
        }
    }
}

/// What drop or import does with an uploaded month.
trait Upload {
    /// The header arrived: may the month be taken?
    async fn start(&mut self, span: &MonthSpan) -> Result<(), CaptureError>;
    /// Some of its events, each checked against the chain already.
    async fn events(
        &mut self,
        span: &MonthSpan,
        events: Vec<ArchivedEvent>,
    ) -> Result<(), CaptureError>;
    /// All of it arrived and checked.
    async fn finish(
        &mut self,
        span: &MonthSpan,
        files: Vec<ArchiveFile>,
    ) -> Result<(), CaptureError>;
}

/// Reads an upload month by month, checking every event against the store's chain.
async fn receive(
    store: &EventStore,
    upload: &mut impl Upload,
    mut stream: Streaming<pb::ArchiveChunk>,
) -> Result<pb::ArchiveResult, Status> {
    let mut done = Vec::new();
    let mut current: Option<(UploadCheck<'_>, Vec<ArchiveFile>)> = None;
    while let Some(chunk) = stream.message().await? {
        match chunk.part {
            Some(Part::Month(month)) => {
                if let Some((check, files)) = current.take() {
                    done.push(finish(upload, check, files).await?);
                }
                let (span, files) = span_from_proto(month);
                upload.start(&span).await?;
                current = Some((UploadCheck::new(store.keys(), span), files));
            }
            Some(Part::Events(batch)) => {
                let Some((check, _)) = current.as_mut() else {
                    return Err(invalid("events came before their month's header"));
                };
                let events: Vec<ArchivedEvent> =
                    batch.events.into_iter().map(event_from_proto).collect();
                for event in &events {
                    check.check(event)?;
                }
                upload.events(check.span(), events).await?;
            }
            None => return Err(invalid("a chunk with neither a month nor events")),
        }
    }
    if let Some((check, files)) = current.take() {
        done.push(finish(upload, check, files).await?);
    }
    Ok(pb::ArchiveResult { months: done })
}

async fn finish(
    upload: &mut impl Upload,
    check: UploadCheck<'_>,
    files: Vec<ArchiveFile>,
) -> Result<pb::ArchivedMonth, CaptureError> {
    check.finish()?;
    let span = check.span().clone();
    upload.finish(&span, files).await?;
    Ok(span_to_proto(span))
}

fn invalid(reason: &str) -> Status {
    CaptureError::Invalid {
        field: "part".to_owned(),
        reason: reason.to_owned(),
    }
    .into()
}

/// `DropArchived`: the uploaded months, once every event matches the stored one.
pub async fn drop_uploaded(
    store: &EventStore,
    stream: Streaming<pb::ArchiveChunk>,
) -> Result<pb::ArchiveResult, Status> {
    let mut dropping = Dropping {
        store,
        key_hashes: Vec::new(),
    };
    receive(store, &mut dropping, stream).await
}

struct Dropping<'s> {
    store: &'s EventStore,
    /// `(key hash, sequence)` of the month's events so far.
    key_hashes: Vec<(i64, i64)>,
}

impl Upload for Dropping<'_> {
    async fn start(&mut self, span: &MonthSpan) -> Result<(), CaptureError> {
        self.key_hashes.clear();
        self.store.check_archive_start(span).await
    }

    async fn events(
        &mut self,
        span: &MonthSpan,
        events: Vec<ArchivedEvent>,
    ) -> Result<(), CaptureError> {
        self.store.compare_archived(&span.month, &events).await?;
        self.key_hashes
            .extend(events.iter().map(|e| (key_hash(&e.store_key), e.sequence)));
        Ok(())
    }

    async fn finish(
        &mut self,
        span: &MonthSpan,
        files: Vec<ArchiveFile>,
    ) -> Result<(), CaptureError> {
        let key_hashes = std::mem::take(&mut self.key_hashes);
        self.store.drop_archived(span, &files, key_hashes).await
    }
}

/// `ImportArchive`: the uploaded months back into the store, each event joining its chain.
pub async fn import_uploaded(
    store: &EventStore,
    stream: Streaming<pb::ArchiveChunk>,
) -> Result<pb::ArchiveResult, Status> {
    let mut importing = Importing {
        store,
        pending: Vec::new(),
        writer: None,
    };
    let answer = receive(store, &mut importing, stream).await;
    // An import that stopped on an error still writes the batches checked before it, and
    // answers only then: once the answer is out, the store no longer changes.
    if let Some(writer) = importing.writer.take() {
        writer.finish().await.ok();
    }
    answer
}

struct Importing<'s> {
    store: &'s EventStore,
    /// Checked events not handed on yet.
    pending: Vec<ArchivedEvent>,
    /// Writes the current month's batches.
    writer: Option<RestoreWriter>,
}

/// Events restored per transaction: fewer commits than one per message.
const RESTORE_BATCH: usize = 5_000;

/// Batches handed to the writer before the receiver waits for it.
const BATCHES_AHEAD: usize = 2;

/// A batch of events being made into rows on a blocking thread.
type Preparing = JoinHandle<Result<Restore, CaptureError>>;

/// Writes prepared batches, in order, on a task of its own. An import has three stages,
/// receiving and checking events against the chain, making them into rows, and writing
/// those: each runs beside the others (profiled on PostgreSQL, writing in line with
/// receiving left a third of the two cores idle).
struct RestoreWriter {
    batches: mpsc::Sender<Preparing>,
    task: JoinHandle<Result<(), CaptureError>>,
}

impl RestoreWriter {
    fn start(store: EventStore) -> Self {
        let (batches, mut queued) = mpsc::channel::<Preparing>(BATCHES_AHEAD);
        let task = tokio::spawn(async move {
            while let Some(preparing) = queued.recv().await {
                store.write_restore(prepared(preparing).await?).await?;
            }
            Ok(())
        });
        Self { batches, task }
    }

    /// Queues `batch`, waiting while [`BATCHES_AHEAD`] are queued already. A writer that
    /// stopped answers with the error that stopped it.
    async fn write(&mut self, batch: Preparing) -> Result<(), CaptureError> {
        if self.batches.send(batch).await.is_err() {
            return joined(&mut self.task).await;
        }
        Ok(())
    }

    /// Waits until every queued batch is written.
    async fn finish(mut self) -> Result<(), CaptureError> {
        drop(self.batches);
        joined(&mut self.task).await
    }
}

async fn joined(task: &mut JoinHandle<Result<(), CaptureError>>) -> Result<(), CaptureError> {
    outcome(task.await, "writing")
}

impl Importing<'_> {
    /// Starts making the pending events into rows and queues them for writing.
    async fn hand_on(&mut self) -> Result<(), CaptureError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let batch = self
            .store
            .prepare_restore(std::mem::take(&mut self.pending));
        let writer = self
            .writer
            .get_or_insert_with(|| RestoreWriter::start(self.store.clone()));
        writer.write(batch).await
    }
}

async fn prepared(preparing: Preparing) -> Result<Restore, CaptureError> {
    outcome(preparing.await, "preparing")
}

/// What a task of the import (`doing` its part) came to, a panic in it as a store error.
fn outcome<T>(
    joined: Result<Result<T, CaptureError>, tokio::task::JoinError>,
    doing: &str,
) -> Result<T, CaptureError> {
    joined.map_err(|err| {
        CaptureError::Store(sea_orm::DbErr::Custom(format!(
            "{doing} archived events failed: {err}"
        )))
    })?
}

impl Upload for Importing<'_> {
    async fn start(&mut self, span: &MonthSpan) -> Result<(), CaptureError> {
        self.pending.clear();
        self.writer = None;
        self.store.check_importable(span).await
    }

    async fn events(
        &mut self,
        _: &MonthSpan,
        mut events: Vec<ArchivedEvent>,
    ) -> Result<(), CaptureError> {
        self.pending.append(&mut events);
        if self.pending.len() >= RESTORE_BATCH {
            self.hand_on().await?;
        }
        Ok(())
    }

    async fn finish(&mut self, span: &MonthSpan, _: Vec<ArchiveFile>) -> Result<(), CaptureError> {
        self.hand_on().await?;
        if let Some(writer) = self.writer.take() {
            writer.finish().await?;
        }
        self.store.finish_import(span).await
    }
}
