//! The audit trail: one append-only row per write request that was let through — who
//! (the principal), when, what (the method or route), from where (the peer address) and
//! the request id — hash-chained like the stored events with a key kept outside the
//! database ([`crate::integrity`]), so an edited, removed or reordered row is found by
//! [`verify`] even when whoever edited it recomputed the links after it.
//!
//! Rows are written by the enforcement layers before the request runs, so an attempt is
//! on record even when the handler then fails; a write refused (unauthenticated, or
//! lacking the role, by the layer or by the handler) is recorded too, its action marked
//! `refused`. Concurrent requests share one audit transaction ([`AuditWriter`]). The suite's own background writers record
//! themselves: scheduled syncs (`tracery-scheduler`) and post-back attempts
//! (`tracery-post-back`, under the posting's id); the MQTT intake records each message
//! under its reader (`mqtt:<reader>`), or its topic where no reader owns it.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr,
    EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use sea_orm_migration::{
    prelude::*,
    schema::{big_pk_auto, string, string_len, timestamp_with_time_zone},
};

use crate::integrity::{
    Break, ChainKeys, ChainRows, ChainVerifier, Checkpoint, GENESIS, relink_unkeyed,
};
use crate::migrations::create_table;
use crate::partitions::{self, Monthly};
use tokio_util::sync::CancellationToken;

/// The `audit_log` table.
pub mod entry {
    use sea_orm::entity::prelude::*;

    /// One audited request.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "audit_log")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub at: ChronoDateTimeUtc,
        /// The principal's subject.
        pub subject: String,
        /// `/package.Service/Method`, or `POST /route`.
        pub action: String,
        /// The caller's address.
        pub source: String,
        /// The request id (`x-request-id`, or one given here).
        pub request_id: String,
        /// Its link in the audit chain.
        pub chain_hash: String,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// What to record.
#[derive(Debug, Clone)]
pub struct Record {
    pub subject: String,
    pub action: String,
    pub source: String,
    pub request_id: String,
}

/// Serialises audit appends on PostgreSQL, so the chain never forks.
const AUDIT_LOCK: i64 = 0x0061_7564_6974;
/// The chain's name in checkpoints.
pub const CHAIN: &str = "audit";
/// Rows per read while walking the chain.
const CHUNK: u64 = 1000;

/// What a row's link covers, after the previous link.
fn parts(at: &DateTime<Utc>, record: &Record) -> [String; 5] {
    [
        at.to_rfc3339(),
        record.subject.clone(),
        record.action.clone(),
        record.source.clone(),
        record.request_id.clone(),
    ]
}

fn row_parts(row: &entry::Model) -> [String; 5] {
    parts(
        &row.at,
        &Record {
            subject: row.subject.clone(),
            action: row.action.clone(),
            source: row.source.clone(),
            request_id: row.request_id.clone(),
        },
    )
}

fn as_strs(parts: &[String]) -> Vec<&str> {
    parts.iter().map(String::as_str).collect()
}

/// Appends `record`, linked with the current chain key, in a transaction of its own.
pub async fn append(
    db: &DatabaseConnection,
    keys: &ChainKeys,
    record: Record,
) -> Result<(), DbErr> {
    let txn = crate::db::begin_write(db).await?;
    append_in(&txn, keys, vec![record]).await?;
    txn.commit().await
}

/// Appends `records` in order inside `txn`, chained after the current head: the caller's
/// write and its record commit together, or neither does.
pub async fn append_in(
    txn: &DatabaseTransaction,
    keys: &ChainKeys,
    records: Vec<Record>,
) -> Result<(), DbErr> {
    if records.is_empty() {
        return Ok(());
    }
    crate::db::serialize(txn, AUDIT_LOCK).await?;
    let mut previous = head(txn)
        .await?
        .map_or_else(|| GENESIS.to_owned(), |(_, link)| link);
    // Stored at microsecond precision, so the link covers what reads back.
    let at = DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).unwrap_or_default();
    let mut rows = Vec::with_capacity(records.len());
    for record in records {
        let chain_hash = keys.link(&previous, &as_strs(&parts(&at, &record)));
        previous.clone_from(&chain_hash);
        rows.push(entry::ActiveModel {
            at: Set(at),
            subject: Set(record.subject),
            action: Set(record.action),
            source: Set(record.source),
            request_id: Set(record.request_id),
            chain_hash: Set(chain_hash),
            ..Default::default()
        });
    }
    // Row ids follow insertion order, which is the chain's order.
    for chunk in rows.chunks(200) {
        entry::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(txn)
            .await?;
    }
    Ok(())
}

/// The audit record of a write whose handler commits it in the write's own transaction
/// (capture appends it with the events, in the same group commit). Put in the request's
/// extensions by the enforcement layer; what the handler does not take — it failed or was
/// refused before writing anything — the layer writes afterwards.
#[derive(Debug, Clone)]
pub struct DeferredAudit {
    record: Record,
    taken: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl DeferredAudit {
    /// A record for the handler to commit.
    pub fn new(record: Record) -> Self {
        Self {
            record,
            taken: std::sync::Arc::default(),
        }
    }

    /// The record, once: the handler that takes it commits it with its write.
    pub fn take(&self) -> Option<Record> {
        (!self.taken.swap(true, std::sync::atomic::Ordering::SeqCst)).then(|| self.record.clone())
    }
}

/// Records waiting for the audit writer, and where each one's answer goes.
type Waiting = (Record, tokio::sync::oneshot::Sender<Result<(), String>>);

/// The most records the writer's queue holds; a request finding it full is refused as
/// overload rather than waiting.
const QUEUE: usize = 8192;
/// The most records one audit transaction takes.
const MAX_GROUP: usize = 2000;

/// Why a record was not written.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The queue is full: the suite is past capacity.
    #[error("the audit trail is {QUEUE} records behind; the suite is over capacity")]
    Overloaded,
    /// The database refused it.
    #[error("the audit record cannot be written: {0}")]
    Unwritten(String),
}

/// Writes audit records for many concurrent requests with one transaction (group commit):
/// each caller waits until its record is committed — no record, no write — but the suite
/// pays one commit per group, not per request.
#[derive(Clone)]
pub struct AuditWriter {
    queue: tokio::sync::mpsc::Sender<Waiting>,
}

impl AuditWriter {
    /// A writer over `db` with its group-commit task (needs a Tokio runtime).
    pub fn new(db: DatabaseConnection, keys: ChainKeys) -> Self {
        let (queue, waiting) = tokio::sync::mpsc::channel(QUEUE);
        tokio::spawn(write_groups(db, keys, waiting));
        Self { queue }
    }

    /// Writes `record`, returning once it is committed.
    pub async fn write(&self, record: Record) -> Result<(), AuditError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.queue
            .try_send((record, reply))
            .map_err(|err| match err {
                tokio::sync::mpsc::error::TrySendError::Full(_) => AuditError::Overloaded,
                tokio::sync::mpsc::error::TrySendError::Closed(_) => {
                    AuditError::Unwritten("the audit writer has stopped".to_owned())
                }
            })?;
        answer
            .await
            .map_err(|_| AuditError::Unwritten("the audit writer has stopped".to_owned()))?
            .map_err(AuditError::Unwritten)
    }
}

async fn write_groups(
    db: DatabaseConnection,
    keys: ChainKeys,
    mut waiting: tokio::sync::mpsc::Receiver<Waiting>,
) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    while waiting.recv_many(&mut group, MAX_GROUP).await > 0 {
        let (records, replies): (Vec<Record>, Vec<_>) = group.drain(..).unzip();
        let written = async {
            let txn = crate::db::begin_write(&db).await?;
            append_in(&txn, &keys, records).await?;
            txn.commit().await
        }
        .await
        .map_err(|err| err.to_string());
        for reply in replies {
            // A caller that gave up waiting has nothing to receive.
            let _ = reply.send(written.clone());
        }
    }
}

/// The newest row's id and link.
pub async fn head(conn: &impl ConnectionTrait) -> Result<Option<(i64, String)>, DbErr> {
    entry::Entity::find()
        .select_only()
        .column(entry::Column::Id)
        .column(entry::Column::ChainHash)
        .order_by_desc(entry::Column::Id)
        .limit(1)
        .into_tuple()
        .one(conn)
        .await
}

/// What [`verify`] found: rows checked, and the first break.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub checked: i64,
    pub broken: Option<Break>,
}

async fn rows_after(conn: &impl ConnectionTrait, after: i64) -> Result<Vec<entry::Model>, DbErr> {
    entry::Entity::find()
        .filter(entry::Column::Id.gt(after))
        .order_by_asc(entry::Column::Id)
        .limit(CHUNK)
        .all(conn)
        .await
}

/// Walks the audit chain from its first row against the keys and `checkpoints`.
pub async fn verify(
    conn: &impl ConnectionTrait,
    keys: &ChainKeys,
    checkpoints: Vec<Checkpoint>,
) -> Result<Report, DbErr> {
    let mut verifier = ChainVerifier::new(keys, checkpoints);
    let mut previous = GENESIS.to_owned();
    let (mut checked, mut after) = (0, 0);
    loop {
        let rows = rows_after(conn, after).await?;
        let Some(last) = rows.last().map(|r| r.id) else {
            return Ok(Report {
                checked,
                broken: verifier.finish(after).err(),
            });
        };
        for row in rows {
            checked += 1;
            let parts = row_parts(&row);
            if let Err(broken) =
                verifier.check(row.id, &previous, &row.chain_hash, &as_strs(&parts))
            {
                return Ok(Report {
                    checked,
                    broken: Some(broken),
                });
            }
            previous = row.chain_hash;
        }
        after = last;
    }
}

/// The audit table as a chain to re-link.
struct AuditRows;

#[async_trait::async_trait]
impl ChainRows for AuditRows {
    async fn rows_after(
        &self,
        txn: &DatabaseTransaction,
        after: i64,
    ) -> Result<Vec<(i64, String, Vec<String>)>, DbErr> {
        Ok(rows_after(txn, after)
            .await?
            .iter()
            .map(|row| (row.id, row.chain_hash.clone(), row_parts(row).to_vec()))
            .collect())
    }

    async fn set_link(
        &self,
        txn: &DatabaseTransaction,
        id: i64,
        link: String,
    ) -> Result<(), DbErr> {
        entry::Entity::update_many()
            .col_expr(entry::Column::ChainHash, Expr::value(link))
            .filter(entry::Column::Id.eq(id))
            .exec(txn)
            .await
            .map(|_| ())
    }
}

/// Re-links, once, an audit chain written before links were keyed (see
/// [`crate::integrity::relink_unkeyed`]). Returns the rows re-linked.
pub async fn relink_legacy(db: &DatabaseConnection, keys: &ChainKeys) -> Result<u64, DbErr> {
    let txn = crate::db::begin_write(db).await?;
    crate::db::serialize(&txn, AUDIT_LOCK).await?;
    relink_unkeyed(txn, &AuditRows, keys, CHAIN).await
}

/// The audit log's months on PostgreSQL.
pub const AUDIT_MONTHS: Monthly = Monthly {
    table: "audit_log",
    column: "at",
};

/// How often the audit log's partitions ahead are checked.
const AHEAD_EVERY: std::time::Duration = std::time::Duration::from_secs(6 * 3600);

/// Keeps the audit log's partitions [`MONTHS_AHEAD`](crate::partitions::MONTHS_AHEAD)
/// ahead of the clock: now, then every six hours, until `shutdown`. Records are written in
/// their callers' transactions, which must not create tables, so the months are there
/// before the first record of theirs.
pub async fn partitions_ahead(db: DatabaseConnection, shutdown: CancellationToken) {
    if db.get_database_backend() != sea_orm::DatabaseBackend::Postgres {
        return;
    }
    loop {
        if let Err(err) = ensure_months_ahead(&db, Utc::now()).await {
            tracing::warn!(error = %err, "cannot create the audit log's partitions ahead");
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(AHEAD_EVERY) => {}
        }
    }
}

/// Creates the audit log's partitions of the month of `now` and the months ahead, under
/// the audit lock that every replica's creator takes.
pub async fn ensure_months_ahead(db: &DatabaseConnection, now: DateTime<Utc>) -> Result<(), DbErr> {
    let txn = crate::db::begin_write(db).await?;
    crate::db::serialize(&txn, AUDIT_LOCK).await?;
    AUDIT_MONTHS
        .ensure(
            &txn,
            partitions::with_months_ahead(partitions::month_of(now)),
        )
        .await?;
    txn.commit().await
}

crate::migrator! {
    /// The audit table's migrations, tracked in their own table.
    pub Migrator in "audit_migrations" {
        CreateAuditLog = "m0001_create_audit_log",
        PartitionAuditLog = "m0002_audit_log_monthly_partitions",
    }
}

#[async_trait::async_trait]
impl MigrationTrait for PartitionAuditLog {
    /// PostgreSQL only: the audit log becomes partitioned by month, the records so far one
    /// partition (see [`crate::partitions`]).
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        AUDIT_MONTHS
            .convert(manager.get_connection(), "id", &[], Utc::now())
            .await
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateAuditLog {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use entry::Column as C;
        create_table(
            manager,
            entry::Entity,
            [
                big_pk_auto(C::Id),
                timestamp_with_time_zone(C::At),
                string(C::Subject),
                string(C::Action),
                string(C::Source),
                string(C::RequestId),
                string_len(C::ChainHash, 64),
            ],
        )
        .await
    }
}
