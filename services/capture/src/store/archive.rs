//! Closed months of stored events taken out of the store and put back (`tracery archive`).
//!
//! A month is the run of sequences whose record times fall in it: record times are taken
//! under the append lock, so they rise with sequences, and a month is one contiguous run
//! whose chain link before it and at its end say where it sits in the chain.
//!
//! - Exporting ([`months_before`], [`events_of`]) reads a month's events exactly as the
//!   chain covers them: store key, link and payload text.
//! - Dropping ([`UploadCheck`], [`compare_with_stored`], [`drop_month`]) takes the events a
//!   client read back from its archive files, checks each against this store's chain key
//!   and stored rows, and only then removes the month, in one transaction. What stays is
//!   small: the month's range and links (so [`super::integrity::verify`] goes on across it),
//!   its files, and a 64-bit hash of each event's store key (so `GetEvent` can name the file
//!   that holds it).
//! - Importing ([`restore_events`], [`finish_import`]) checks that the events join this
//!   store's chain where the month was, and puts them back at their sequences.

use chrono::{DateTime, Months, NaiveDate, TimeZone, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};
use sha2::{Digest, Sha256};
use tracery_runtime::{
    integrity::{ChainKeys, GENESIS},
    partitions,
};

use super::{
    EVENT_MONTHS, bulk, event, event_columns, integrity, keys, parse_payload, payloads::Payloads,
};
use crate::domain::CaptureError;

/// The `capture_archives` table: one row per month dropped from the store.
pub mod month {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "capture_archives")]
    pub struct Model {
        /// `YYYY-MM`.
        #[sea_orm(primary_key, auto_increment = false)]
        pub month: String,
        pub events: i64,
        pub first_sequence: i64,
        pub last_sequence: i64,
        /// The chain link before the month's first event.
        pub link_before: String,
        /// Its last event's link.
        pub end_link: String,
        pub dropped_at: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// The `capture_archive_files` table: the files holding each dropped month.
pub mod file {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "capture_archive_files")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub month: String,
        /// Its path within the archive folder.
        pub name: String,
        pub sha256: String,
        pub events: i64,
        pub first_sequence: i64,
        pub last_sequence: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// The `capture_archived_keys` table: which sequence each dropped store key had, by hash.
pub mod archived_key {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "capture_archived_keys")]
    pub struct Model {
        /// [`super::key_hash`] of the store key.
        #[sea_orm(primary_key, auto_increment = false)]
        pub key_hash: i64,
        #[sea_orm(primary_key, auto_increment = false)]
        pub sequence: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Creates the archive tables (migration `m0015`).
pub async fn create_tables(conn: &impl ConnectionTrait) -> Result<(), DbErr> {
    let (integer, without_rowid) = match conn.get_database_backend() {
        sea_orm::DatabaseBackend::Postgres => ("bigint", ""),
        _ => ("INTEGER", " WITHOUT ROWID"),
    };
    let file_id = match conn.get_database_backend() {
        sea_orm::DatabaseBackend::Postgres => "bigserial PRIMARY KEY",
        _ => "INTEGER PRIMARY KEY AUTOINCREMENT",
    };
    for sql in [
        "CREATE TABLE IF NOT EXISTS capture_archives (month text PRIMARY KEY, \
         events bigint NOT NULL, first_sequence bigint NOT NULL, \
         last_sequence bigint NOT NULL, link_before text NOT NULL, end_link text NOT NULL, \
         dropped_at timestamptz NOT NULL)"
            .to_owned(),
        format!(
            "CREATE TABLE IF NOT EXISTS capture_archive_files (id {file_id}, \
             month text NOT NULL, name text NOT NULL, sha256 text NOT NULL, \
             events bigint NOT NULL, first_sequence bigint NOT NULL, \
             last_sequence bigint NOT NULL)"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS capture_archived_keys (key_hash {integer} NOT NULL, \
             sequence {integer} NOT NULL, PRIMARY KEY (key_hash, sequence)){without_rowid}"
        ),
    ] {
        conn.execute_unprepared(&sql).await?;
    }
    Ok(())
}

/// A month of events as archived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonthSpan {
    /// `YYYY-MM`.
    pub month: String,
    pub events: i64,
    pub first_sequence: i64,
    pub last_sequence: i64,
    pub link_before: String,
    pub end_link: String,
}

impl From<month::Model> for MonthSpan {
    fn from(row: month::Model) -> Self {
        Self {
            month: row.month,
            events: row.events,
            first_sequence: row.first_sequence,
            last_sequence: row.last_sequence,
            link_before: row.link_before,
            end_link: row.end_link,
        }
    }
}

/// One file of an archived month.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveFile {
    pub name: String,
    pub sha256: String,
    pub events: i64,
    pub first_sequence: i64,
    pub last_sequence: i64,
}

/// One event as archived: exactly what its chain link covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchivedEvent {
    pub sequence: i64,
    pub store_key: String,
    pub link: String,
    pub payload: String,
}

fn refused(reason: String) -> CaptureError {
    CaptureError::ArchiveRefused(reason)
}

/// 00:00 UTC on the first of `time`'s month: the month of its partition.
fn month_start(time: DateTime<Utc>) -> DateTime<Utc> {
    Utc.from_utc_datetime(&partitions::month_of(time).and_time(chrono::NaiveTime::MIN))
}

/// The `YYYY-MM` name of the month starting at `start`.
fn month_name(start: DateTime<Utc>) -> String {
    start.format("%Y-%m").to_string()
}

/// The first day of `month` (`YYYY-MM`).
fn month_first(month: &str) -> Result<NaiveDate, CaptureError> {
    Ok(month_end(month)?.date_naive() - Months::new(1))
}

/// Makes room for the events of dropped `span` to come back: on PostgreSQL, the month's
/// partition, which went with them.
pub async fn make_room(db: &DatabaseConnection, span: &MonthSpan) -> Result<(), CaptureError> {
    let txn = super::begin_append(db).await?;
    EVENT_MONTHS
        .ensure(&txn, [month_first(&span.month)?])
        .await?;
    txn.commit().await?;
    Ok(())
}

/// The first instant after `month` (`YYYY-MM`).
fn month_end(month: &str) -> Result<DateTime<Utc>, CaptureError> {
    let start = DateTime::parse_from_rfc3339(&format!("{month}-01T00:00:00Z"))
        .map_err(|_| CaptureError::Invalid {
            field: "month".to_owned(),
            reason: format!("`{month}` is not a month (YYYY-MM)"),
        })?
        .to_utc();
    Ok(start + Months::new(1))
}

/// Refuses a `before` that is not the start of a month or is in the future: only closed
/// months are archived.
pub fn check_before(before: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), CaptureError> {
    let invalid = |reason: String| CaptureError::Invalid {
        field: "before".to_owned(),
        reason,
    };
    if month_start(before) != before {
        return Err(invalid(format!(
            "{} is not a month boundary: give the first of a month, 00:00 UTC (e.g. {})",
            before.to_rfc3339(),
            month_start(before).format("%Y-%m-%d")
        )));
    }
    if before > now {
        return Err(invalid(format!(
            "{} is in the future: only months that have ended can be archived",
            before.format("%Y-%m-%d")
        )));
    }
    Ok(())
}

/// The first 8 bytes of the SHA-256 of a store key, as kept for dropped events.
pub fn key_hash(store_key: &str) -> i64 {
    let digest = Sha256::digest(store_key.as_bytes());
    let mut bytes = [0; 8];
    bytes.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(bytes)
}

/// The first stored row after sequence `after`: its sequence and record time.
async fn first_after(
    conn: &impl ConnectionTrait,
    after: i64,
) -> Result<Option<(i64, DateTime<Utc>)>, DbErr> {
    event::Entity::find()
        .select_only()
        .column(event::Column::Sequence)
        .column(event::Column::RecordTime)
        .filter(event::Column::Sequence.gt(after))
        .order_by_asc(event::Column::Sequence)
        .limit(1)
        .into_tuple()
        .one(conn)
        .await
}

/// The last stored sequence after `after` whose row comes before the first one recorded
/// at or after `end` (the head when none is): where a month ending at `end` stops.
async fn last_before(
    conn: &impl ConnectionTrait,
    after: i64,
    end: DateTime<Utc>,
) -> Result<Option<i64>, DbErr> {
    let boundary: Option<i64> = event::Entity::find()
        .select_only()
        .column(event::Column::Sequence)
        .filter(event::Column::Sequence.gt(after))
        .filter(event::Column::RecordTime.gte(end))
        .order_by_asc(event::Column::Sequence)
        .limit(1)
        .into_tuple()
        .one(conn)
        .await?;
    let mut last = event::Entity::find()
        .select_only()
        .column(event::Column::Sequence)
        .filter(event::Column::Sequence.gt(after))
        .order_by_desc(event::Column::Sequence)
        .limit(1);
    if let Some(boundary) = boundary {
        last = last.filter(event::Column::Sequence.lt(boundary));
    }
    last.into_tuple().one(conn).await
}

/// The stored link of the row at `sequence`.
async fn stored_link(conn: &impl ConnectionTrait, sequence: i64) -> Result<Option<String>, DbErr> {
    let link: Option<Option<String>> = event::Entity::find()
        .select_only()
        .column(event::Column::ChainHash)
        .filter(event::Column::Sequence.eq(sequence))
        .into_tuple()
        .one(conn)
        .await?;
    Ok(link.flatten())
}

/// The chain link just before sequence `first`: the previous stored event's, or the end
/// link of the dropped month before it, whichever is later; the chain's start if neither.
pub async fn link_before(conn: &impl ConnectionTrait, first: i64) -> Result<String, DbErr> {
    let stored: Option<(i64, Option<String>)> = event::Entity::find()
        .select_only()
        .column(event::Column::Sequence)
        .column(event::Column::ChainHash)
        .filter(event::Column::Sequence.lt(first))
        .order_by_desc(event::Column::Sequence)
        .limit(1)
        .into_tuple()
        .one(conn)
        .await?;
    let archived = month::Entity::find()
        .filter(month::Column::LastSequence.lt(first))
        .order_by_desc(month::Column::LastSequence)
        .one(conn)
        .await?;
    Ok(match (stored, archived) {
        (Some((sequence, link)), Some(month)) if month.last_sequence < sequence => {
            link.unwrap_or_default()
        }
        (_, Some(month)) => month.end_link,
        (Some((_, link)), None) => link.unwrap_or_default(),
        (None, None) => GENESIS.to_owned(),
    })
}

/// Every month of stored events that ended before `before`, oldest first.
pub async fn months_before(
    conn: &impl ConnectionTrait,
    before: DateTime<Utc>,
) -> Result<Vec<MonthSpan>, CaptureError> {
    let mut months = Vec::new();
    let mut after = 0;
    while let Some((first, recorded)) = first_after(conn, after).await? {
        let start = month_start(recorded);
        if start >= before {
            break;
        }
        let end = start + Months::new(1);
        let Some(last) = last_before(conn, after, end).await? else {
            break;
        };
        let events = event::Entity::find()
            .filter(event::Column::Sequence.between(first, last))
            .count(conn)
            .await?;
        months.push(MonthSpan {
            month: month_name(start),
            events: i64::try_from(events).unwrap_or(i64::MAX),
            first_sequence: first,
            last_sequence: last,
            link_before: link_before(conn, first).await?,
            end_link: stored_link(conn, last).await?.unwrap_or_default(),
        });
        after = last;
    }
    Ok(months)
}

/// Up to `limit` events of the month ending at sequence `last`, after sequence `after`, as
/// archived.
pub async fn events_of(
    conn: &impl ConnectionTrait,
    payloads: &Payloads,
    after: i64,
    last: i64,
    limit: u64,
) -> Result<Vec<ArchivedEvent>, CaptureError> {
    let rows: Vec<(i64, String, Option<String>, Vec<u8>)> = event::Entity::find()
        .select_only()
        .column(event::Column::Sequence)
        .column(event::Column::EventId)
        .column(event::Column::ChainHash)
        .column(event::Column::Payload)
        .filter(event::Column::Sequence.gt(after))
        .filter(event::Column::Sequence.lte(last))
        .order_by_asc(event::Column::Sequence)
        .limit(limit)
        .into_tuple()
        .all(conn)
        .await?;
    let mut events = Vec::with_capacity(rows.len());
    for (sequence, store_key, link, stored) in rows {
        let payload =
            payloads
                .decode(conn, &stored)
                .await
                .map_err(|err| CaptureError::CorruptEvent {
                    sequence,
                    reason: err.to_string(),
                })?;
        events.push(ArchivedEvent {
            sequence,
            store_key,
            link: link.unwrap_or_default(),
            payload,
        });
    }
    Ok(events)
}

/// Follows an uploaded month event by event: each must come in sequence order within the
/// month and carry the link this store's chain key gives it after the one before, so an
/// archive altered, cut, or written by another deployment (another chain key) is refused.
pub struct UploadCheck<'k> {
    keys: &'k ChainKeys,
    span: MonthSpan,
    previous: String,
    seen: i64,
    last_seen: i64,
}

impl<'k> UploadCheck<'k> {
    /// Checking `span`, whose header the client sent.
    pub fn new(keys: &'k ChainKeys, span: MonthSpan) -> Self {
        Self {
            keys,
            previous: span.link_before.clone(),
            span,
            seen: 0,
            last_seen: 0,
        }
    }

    /// The month being checked.
    pub fn span(&self) -> &MonthSpan {
        &self.span
    }

    /// Checks the next uploaded event.
    pub fn check(&mut self, event: &ArchivedEvent) -> Result<(), CaptureError> {
        let month = &self.span.month;
        let in_order = if self.seen == 0 {
            event.sequence == self.span.first_sequence
        } else {
            event.sequence > self.last_seen && event.sequence <= self.span.last_sequence
        };
        if !in_order {
            return Err(refused(format!(
                "{month}: the event at sequence {} is not where the month's header puts it \
                 (sequences {}..={}, in order)",
                event.sequence, self.span.first_sequence, self.span.last_sequence
            )));
        }
        let expected = integrity::link(self.keys, &self.previous, &event.store_key, &event.payload);
        if expected != event.link {
            return Err(refused(format!(
                "{month}: the event at sequence {} (`{}`) does not join this store's chain: \
                 its link is not the one this deployment's chain key gives it (an archive \
                 from another deployment, or one altered since export)",
                event.sequence, event.store_key
            )));
        }
        self.previous = event.link.clone();
        self.seen += 1;
        self.last_seen = event.sequence;
        Ok(())
    }

    /// Checks that the whole month came.
    pub fn finish(&self) -> Result<(), CaptureError> {
        let span = &self.span;
        if self.seen != span.events
            || self.last_seen != span.last_sequence
            || self.previous != span.end_link
        {
            return Err(refused(format!(
                "{}: the archive holds {} events up to sequence {}, its manifest says {} up to \
                 {}: files are missing or cut",
                span.month, self.seen, self.last_seen, span.events, span.last_sequence
            )));
        }
        Ok(())
    }
}

/// Checks that `events` (checked against the chain already) are the stored rows at their
/// sequences, and that no stored row between them is missing from the upload.
pub async fn compare_with_stored(
    conn: &impl ConnectionTrait,
    month: &str,
    events: &[ArchivedEvent],
) -> Result<(), CaptureError> {
    let (Some(first), Some(last)) = (events.first(), events.last()) else {
        return Ok(());
    };
    let stored: Vec<(i64, String, Option<String>)> = event::Entity::find()
        .select_only()
        .column(event::Column::Sequence)
        .column(event::Column::EventId)
        .column(event::Column::ChainHash)
        .filter(event::Column::Sequence.between(first.sequence, last.sequence))
        .order_by_asc(event::Column::Sequence)
        .into_tuple()
        .all(conn)
        .await?;
    let same = stored.len() == events.len()
        && stored
            .iter()
            .zip(events)
            .all(|((sequence, key, link), event)| {
                *sequence == event.sequence
                    && *key == event.store_key
                    && link.as_deref() == Some(event.link.as_str())
            });
    if !same {
        return Err(refused(format!(
            "{month}: the archive's events at sequences {}..={} are not the stored ones; \
             nothing was dropped",
            first.sequence, last.sequence
        )));
    }
    Ok(())
}

/// Refuses `span` unless it has ended: its month is over, by `now`.
fn check_closed(span: &MonthSpan, now: DateTime<Utc>) -> Result<(), CaptureError> {
    if month_end(&span.month)? > now {
        return Err(refused(format!(
            "{}: the month has not ended; only closed months are archived",
            span.month
        )));
    }
    Ok(())
}

/// Removes `span` from the store, its events checked already: in one transaction, which
/// first checks that the stored rows are still the month's (count and end link) and that
/// the month was not dropped meanwhile, then keeps its record, files and key hashes.
pub async fn drop_month(
    db: &DatabaseConnection,
    span: &MonthSpan,
    files: &[ArchiveFile],
    key_hashes: Vec<(i64, i64)>,
    now: DateTime<Utc>,
) -> Result<(), CaptureError> {
    check_closed(span, now)?;
    let txn = super::begin_append(db).await?;
    if month::Entity::find_by_id(span.month.clone())
        .one(&txn)
        .await?
        .is_some()
    {
        return Err(refused(format!("{}: dropped already", span.month)));
    }
    let in_range = event::Entity::find()
        .filter(event::Column::Sequence.between(span.first_sequence, span.last_sequence));
    let stored = in_range.clone().count(&txn).await?;
    // The month's label is checked too: every row of the range was recorded in it.
    let end = month_end(&span.month)?;
    let recorded_in_month = in_range
        .filter(event::Column::RecordTime.gte(end - Months::new(1)))
        .filter(event::Column::RecordTime.lt(end))
        .count(&txn)
        .await?;
    let end_link = stored_link(&txn, span.last_sequence).await?;
    if i64::try_from(stored).ok() != Some(span.events)
        || recorded_in_month != stored
        || end_link.as_deref() != Some(&span.end_link)
    {
        return Err(refused(format!(
            "{}: the store holds {stored} events in sequences {}..={}, the archive {}; \
             ({recorded_in_month} recorded in the month); nothing was dropped",
            span.month, span.first_sequence, span.last_sequence, span.events
        )));
    }
    month::Entity::insert(month::ActiveModel {
        month: Set(span.month.clone()),
        events: Set(span.events),
        first_sequence: Set(span.first_sequence),
        last_sequence: Set(span.last_sequence),
        link_before: Set(span.link_before.clone()),
        end_link: Set(span.end_link.clone()),
        dropped_at: Set(now),
    })
    .exec_without_returning(&txn)
    .await?;
    if !files.is_empty() {
        file::Entity::insert_many(files.iter().map(|f| file::ActiveModel {
            month: Set(span.month.clone()),
            name: Set(f.name.clone()),
            sha256: Set(f.sha256.clone()),
            events: Set(f.events),
            first_sequence: Set(f.first_sequence),
            last_sequence: Set(f.last_sequence),
            ..Default::default()
        }))
        .exec_without_returning(&txn)
        .await?;
    }
    let mut key_rows = key_hashes.into_iter().peekable();
    while key_rows.peek().is_some() {
        archived_key::Entity::insert_many(key_rows.by_ref().take(1_000).map(
            |(key_hash, sequence)| archived_key::ActiveModel {
                key_hash: Set(key_hash),
                sequence: Set(sequence),
            },
        ))
        .on_conflict_do_nothing()
        .exec_without_returning(&txn)
        .await?;
    }
    remove_rows(&txn, span).await?;
    txn.commit().await?;
    Ok(())
}

/// Removes the rows of `span` from the event table and the tables keyed by sequence with
/// it (the identifier index, the traceparents). On PostgreSQL a month whose partition
/// holds exactly its events loses the partition whole; the rows from before partitioning
/// are deleted one by one.
async fn remove_rows(conn: &impl ConnectionTrait, span: &MonthSpan) -> Result<(), CaptureError> {
    let (first, last) = (span.first_sequence, span.last_sequence);
    let month = month_first(&span.month)?;
    // On PostgreSQL the identifier index is a column of the events (see `bulk`).
    let index: &[&str] = match conn.get_database_backend() {
        sea_orm::DatabaseBackend::Postgres => &[],
        _ => &["capture_identifier_index"],
    };
    delete_rows(conn, first, last, index).await?;
    if EVENT_MONTHS.has_own(conn, month).await? && partition_holds(conn, span, month).await? {
        delete_rows(conn, first, last, &["capture_event_traces"]).await?;
        EVENT_MONTHS.drop_month(conn, month).await?;
    } else {
        delete_rows(
            conn,
            first,
            last,
            &["capture_event_traces", "capture_events"],
        )
        .await?;
    }
    Ok(())
}

/// Whether the partition of `month` holds exactly the events of `span`.
async fn partition_holds(
    conn: &impl ConnectionTrait,
    span: &MonthSpan,
    month: NaiveDate,
) -> Result<bool, DbErr> {
    let row = conn
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DatabaseBackend::Postgres,
            format!(
                "SELECT count(*) AS events, min(sequence) AS first, max(sequence) AS last \
                 FROM {}",
                EVENT_MONTHS.partition(month)
            ),
        ))
        .await?;
    let Some(row) = row else {
        return Ok(false);
    };
    let held: (i64, Option<i64>, Option<i64>) = (
        row.try_get("", "events")?,
        row.try_get("", "first")?,
        row.try_get("", "last")?,
    );
    Ok(held
        == (
            span.events,
            Some(span.first_sequence),
            Some(span.last_sequence),
        ))
}

/// Deletes the rows of sequences `first..=last` from `tables`.
async fn delete_rows(
    conn: &impl ConnectionTrait,
    first: i64,
    last: i64,
    tables: &[&str],
) -> Result<(), DbErr> {
    let backend = conn.get_database_backend();
    for table in tables {
        let sql = match backend {
            sea_orm::DatabaseBackend::Postgres => {
                format!("DELETE FROM {table} WHERE sequence BETWEEN $1 AND $2")
            }
            _ => format!("DELETE FROM {table} WHERE sequence BETWEEN ? AND ?"),
        };
        conn.execute_raw(sea_orm::Statement::from_sql_and_values(
            backend,
            sql,
            [first.into(), last.into()],
        ))
        .await?;
    }
    Ok(())
}

/// The dropped month `month`, if it is one.
pub async fn dropped(conn: &impl ConnectionTrait, month: &str) -> Result<Option<MonthSpan>, DbErr> {
    Ok(month::Entity::find_by_id(month.to_owned())
        .one(conn)
        .await?
        .map(MonthSpan::from))
}

/// Refuses to import `span` unless it is a month dropped from this store, with the same
/// place in the chain.
pub async fn check_importable(
    conn: &impl ConnectionTrait,
    span: &MonthSpan,
) -> Result<(), CaptureError> {
    match dropped(conn, &span.month).await? {
        Some(recorded) if recorded == *span => Ok(()),
        Some(recorded) => Err(refused(format!(
            "{}: the archive's chain does not join this store's: the store dropped sequences \
             {}..={} ending at link {}, the archive holds {}..={} ending at link {}",
            span.month,
            recorded.first_sequence,
            recorded.last_sequence,
            recorded.end_link,
            span.first_sequence,
            span.last_sequence,
            span.end_link
        ))),
        None => {
            let expected = link_before(conn, span.first_sequence).await?;
            if expected != span.link_before {
                return Err(refused(format!(
                    "{}: the archive's chain does not join this store's: its link before \
                     sequence {} is {}, this store's is {} (an archive from another deployment)",
                    span.month, span.first_sequence, span.link_before, expected
                )));
            }
            Err(refused(format!(
                "{}: this month was not dropped from the store; there is nothing to restore",
                span.month
            )))
        }
    }
}

/// Checked events made into rows, ready to be written back ([`write_restore`]).
pub struct Restore {
    rows: Vec<(i64, bulk::EventRow)>,
}

/// Makes checked `events` into their rows and identifier index rows: the work of an
/// import that needs no database, so it can run while the previous batch is written.
pub fn prepare_restore(
    payloads: &Payloads,
    events: &[ArchivedEvent],
) -> Result<Restore, CaptureError> {
    let mut rows = Vec::with_capacity(events.len());
    for archived in events {
        let stored = parse_payload(archived.sequence, &archived.payload)?;
        let event_id = stored.event.event_id.clone().unwrap_or_default();
        let record_time = stored
            .event
            .record_time
            .map(|t| t.to_utc())
            .ok_or_else(|| {
                refused(format!(
                    "the event at sequence {} has no recordTime",
                    archived.sequence
                ))
            })?;
        // The payload is kept as archived, byte for byte: the chain link covers it.
        let mut row = event_columns(
            &stored.event,
            &(archived.store_key.clone(), event_id),
            record_time,
        );
        row.payload = archived.payload.clone();
        row.chain_hash = archived.link.clone();
        row.keys = keys::keys_of(&stored.event);
        rows.push((archived.sequence, row));
    }
    let frames = payloads
        .encode_all(rows.iter().map(|(_, row)| row.payload.as_str()))
        .map_err(|err| CaptureError::Store(DbErr::Custom(err.to_string())))?;
    for ((_, row), frame) in rows.iter_mut().zip(frames) {
        row.stored_payload = frame;
    }
    Ok(Restore { rows })
}

/// Puts prepared rows back at their sequences in one transaction; rows stored already are
/// left alone, so an import can run again.
pub async fn write_restore(db: &DatabaseConnection, restore: Restore) -> Result<(), CaptureError> {
    let txn = tracery_runtime::db::begin_write(db).await?;
    bulk::insert_events_at(&txn, restore.rows).await?;
    txn.commit().await?;
    Ok(())
}

/// Ends the import of `span`: once every event is back, the month's archive record goes.
pub async fn finish_import(db: &DatabaseConnection, span: &MonthSpan) -> Result<(), CaptureError> {
    let txn = tracery_runtime::db::begin_write(db).await?;
    let stored = event::Entity::find()
        .filter(event::Column::Sequence.between(span.first_sequence, span.last_sequence))
        .count(&txn)
        .await?;
    if i64::try_from(stored).ok() != Some(span.events) {
        return Err(refused(format!(
            "{}: {stored} of its {} events are back; run the import again",
            span.month, span.events
        )));
    }
    month::Entity::delete_by_id(span.month.clone())
        .exec(&txn)
        .await?;
    file::Entity::delete_many()
        .filter(file::Column::Month.eq(&span.month))
        .exec(&txn)
        .await?;
    archived_key::Entity::delete_many()
        .filter(archived_key::Column::Sequence.between(span.first_sequence, span.last_sequence))
        .exec(&txn)
        .await?;
    txn.commit().await?;
    Ok(())
}

/// The archive file holding the dropped event stored under `store_key`, if one does.
pub async fn archived_in(
    conn: &impl ConnectionTrait,
    store_key: &str,
) -> Result<Option<String>, DbErr> {
    let sequences: Vec<i64> = archived_key::Entity::find()
        .select_only()
        .column(archived_key::Column::Sequence)
        .filter(archived_key::Column::KeyHash.eq(key_hash(store_key)))
        .into_tuple()
        .all(conn)
        .await?;
    for sequence in sequences {
        let holding = file::Entity::find()
            .filter(file::Column::FirstSequence.lte(sequence))
            .filter(file::Column::LastSequence.gte(sequence))
            .one(conn)
            .await?;
        if let Some(holding) = holding {
            return Ok(Some(holding.name));
        }
    }
    Ok(None)
}

/// Every dropped month, oldest first: where [`super::integrity::verify`] passes over
/// the chain.
pub async fn dropped_months(conn: &impl ConnectionTrait) -> Result<Vec<MonthSpan>, DbErr> {
    Ok(month::Entity::find()
        .order_by_asc(month::Column::FirstSequence)
        .all(conn)
        .await?
        .into_iter()
        .map(MonthSpan::from)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn before_must_be_a_past_month_boundary() {
        let now = Utc
            .with_ymd_and_hms(2026, 12, 5, 10, 0, 0)
            .single()
            .expect("a valid time");
        let at = |y, m, d, h| {
            Utc.with_ymd_and_hms(y, m, d, h, 0, 0)
                .single()
                .expect("a valid time")
        };
        assert!(check_before(at(2026, 12, 1, 0), now).is_ok());
        assert!(check_before(at(2026, 1, 1, 0), now).is_ok());
        assert!(check_before(at(2026, 11, 15, 0), now).is_err());
        assert!(check_before(at(2026, 11, 1, 3), now).is_err());
        assert!(check_before(at(2027, 1, 1, 0), now).is_err());
    }

    #[test]
    fn months_end_at_the_next_first() {
        assert_eq!(
            month_end("2026-12").expect("a month"),
            Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0)
                .single()
                .expect("a valid time")
        );
        assert!(month_end("2026-13").is_err());
    }
}
